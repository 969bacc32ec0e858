"""The `harmonize` job (harmonization and editing models): the naive image and mask stored at submission,
optionally a fine-tuning on the naive image, the composite, and with fine-tuning the tuned checkpoint.

An engine ValueError (a mask of the wrong size, an empty mask, a stage out of range) fails the job with its
reason.
"""

from __future__ import annotations

import engine
from core.models import Job, JobState, Model
from core.storage import ObjectNotFound, job_object_key
from core.vocabulary import CHECKPOINT_FILE, DEFAULT_COMPOSITE, MASK_FILE, NAIVE_FILE, RESULT_FILE
from worker import outcomes
from worker.artifacts import Stored, load_trained, store_job_file
from worker.runtime import CancelCheck, WorkerContext, progress_reporter


def run(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    params = job.params
    try:
        naive_png = ctx.storage.get(job_object_key(model.id, job.id, NAIVE_FILE))
        mask_png = ctx.storage.get(job_object_key(model.id, job.id, MASK_FILE))
    except ObjectNotFound as e:
        return outcomes.fail(ctx, job, f"the job's input {e} is missing from storage")
    rng = engine.make_rng(int(params.get("seed", 0)), ctx.device)
    try:
        trained = load_trained(ctx, model)
        naive, mask = engine.load_image(naive_png), engine.load_image(mask_png)
        if params.get("fine_tune"):
            trained = engine.fine_tune(
                trained,
                naive.to(ctx.device),
                int(params["fine_tune_iters"]),
                rng=rng,
                on_progress=progress_reporter(ctx, job),
                should_stop=CancelCheck(ctx, job),
            )
        composite = params.get("composite", DEFAULT_COMPOSITE)  # jobs queued before the option: its default
        out = engine.harmonize(
            trained, naive, mask, stage=int(params.get("stage", 0)), rng=rng, composite=composite
        )
    except engine.TrainingCanceled:
        return outcomes.finish_canceled(ctx, job)
    except ValueError as e:
        return outcomes.fail(ctx, job, str(e))
    stored = Stored()
    store_job_file(ctx, job, RESULT_FILE, engine.to_png_bytes(out), stored)
    if params.get("fine_tune"):
        store_job_file(ctx, job, CHECKPOINT_FILE, engine.checkpoint.to_bytes(trained), stored)
    result = {"attempt": job.attempts, "files": stored.files}
    return outcomes.commit_result(ctx, job, owned_keys=stored.owned_keys, result=result)
