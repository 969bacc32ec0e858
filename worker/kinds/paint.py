"""The `paint` job: paint-to-image (engine/paint.py). The painting stored at submission enters a generation,
retarget or animation model at `stage`; n draws with fresh noise above it, each stored as a PNG.

An engine ValueError (a stage out of range, a model of another mode) fails the job with its reason.
"""

from __future__ import annotations

import engine
from core.models import Job, JobState, Model
from core.storage import ObjectNotFound, job_object_key
from core.vocabulary import PAINT_FILES, PAINT_STAGE_DEFAULT, PAINTING_FILE
from worker import outcomes
from worker.artifacts import Stored, load_trained, store_job_file
from worker.runtime import WorkerContext


def run(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    params = job.params
    stage = int(params.get("stage", PAINT_STAGE_DEFAULT))
    try:
        painting_png = ctx.storage.get(job_object_key(model.id, job.id, PAINTING_FILE))
    except ObjectNotFound as e:
        return outcomes.fail(ctx, job, f"the job's input {e} is missing from storage")
    try:
        trained = load_trained(ctx, model)
        images = engine.paint_to_image(
            trained,
            engine.load_image(painting_png),
            stage=stage,
            quantize=bool(params.get("quantize", False)),
            n=int(params.get("n", 1)),
            rng=engine.make_rng(int(params.get("seed", 0)), trained.device),
        ).cpu()  # [n, 3, H, W] at the model's top size
    except ValueError as e:
        return outcomes.fail(ctx, job, str(e))
    stored = Stored()
    for name, image in zip(PAINT_FILES, images, strict=False):
        store_job_file(ctx, job, name, engine.to_png_bytes(image), stored)
    result = {
        "attempt": job.attempts,
        "files": stored.files,
        "stage": stage,
        "width": int(images.shape[-1]),
        "height": int(images.shape[-2]),
    }
    return outcomes.commit_result(ctx, job, owned_keys=stored.owned_keys, result=result)
