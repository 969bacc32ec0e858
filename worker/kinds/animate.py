"""The `animate` job: a random walk around the model's reconstruction, rendered as a looping GIF or WebP, or an MP4."""

from __future__ import annotations

import engine
from core.models import Job, JobState, Model
from core.vocabulary import ANIMATION_FILES
from worker import outcomes
from worker.artifacts import Stored, load_trained, store_job_file
from worker.runtime import WorkerContext


def run(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    params = job.params
    fmt = params.get("format", "gif")
    try:
        trained = load_trained(ctx, model)
        frames = engine.animate(
            trained,
            int(params["frames"]),
            rng=engine.make_rng(int(params.get("seed", 0)), trained.device),
            alpha=float(params.get("alpha", 0.1)),
            beta=float(params.get("beta", 0.9)),
            start_stage=int(params.get("start_stage", 0)),
        )
        data = engine.frames_to_animation(frames.cpu(), float(params.get("fps", 10.0)), fmt)
    except ValueError as e:
        return outcomes.fail(ctx, job, str(e))
    stored = Stored()
    store_job_file(ctx, job, ANIMATION_FILES[fmt], data, stored)
    height, width = engine.animation_size(
        int(frames.shape[-2]), int(frames.shape[-1]), fmt
    )  # the file's frames
    result = {
        "attempt": job.attempts,
        "files": stored.files,
        "frames": int(frames.shape[0]),
        "width": int(width),
        "height": int(height),
    }
    return outcomes.commit_result(ctx, job, owned_keys=stored.owned_keys, result=result)
