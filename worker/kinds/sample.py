"""The `sample` job: n new images from a trained model, at any scale and start stage."""

from __future__ import annotations

import engine
from core.models import Job, JobState, Model
from worker import outcomes
from worker.artifacts import load_trained, sample_in_batches, store_samples
from worker.runtime import WorkerContext


def run(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    params = job.params
    try:
        trained = load_trained(ctx, model)
        images = sample_in_batches(
            trained,
            int(params.get("n", 4)),
            engine.make_rng(int(params.get("seed", 0)), trained.device),
            scale=(float(params.get("scale_h", 1.0)), float(params.get("scale_w", 1.0))),
            start_stage=int(params.get("start_stage", 0)),
        )
    except ValueError as e:
        return outcomes.fail(ctx, job, str(e))
    stored = store_samples(ctx, job, model, images, preview=False)
    return outcomes.commit_result(ctx, job, owned_keys=stored.owned_keys, rows=stored.rows)
