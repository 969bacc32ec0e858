"""The harmonize job: load the model and the job's naive image and mask, optionally fine-tune on the naive image,
composite, store the result (and the fine-tuned checkpoint), then mark the job succeeded.

Objects first, then the row: the `succeeded` UPDATE is what makes the result visible. An engine ValueError (a
mask of the wrong size, an empty mask, a stage out of range) fails the job with its reason.
"""

from __future__ import annotations

import logging

import torch

import engine
from core import jobs
from core.harmonization import CHECKPOINT, MASK, NAIVE, RESULT
from core.models import Job, JobState, Model
from core.storage import ObjectNotFound, job_object_key
from worker.pipeline import (
    CancelCheck,
    JobGone,
    ProgressReporter,
    WorkerContext,
    _current_state,
    _fail,
    _finish_canceled,
    transaction,
)

log = logging.getLogger(__name__)


def run_harmonization(ctx: WorkerContext, job: Job, model: Model) -> str:
    params = job.params
    if not model.checkpoint_key:
        return _fail(ctx, job, "the model has no checkpoint; train it first")
    try:
        naive_png = ctx.storage.get(job_object_key(model.id, job.id, NAIVE))
        mask_png = ctx.storage.get(job_object_key(model.id, job.id, MASK))
    except ObjectNotFound as e:
        return _fail(ctx, job, f"the job's input {e} is missing from storage")
    device = ctx.device
    trained = engine.checkpoint.from_bytes(ctx.storage.get(model.checkpoint_key), device=device)
    rng = engine.make_rng(int(params.get("seed", 0)), device)
    try:
        naive = engine.load_image(naive_png)
        mask = engine.load_image(mask_png)
        if params.get("fine_tune"):
            trained = engine.fine_tune(
                trained,
                naive.to(device),
                int(params.get("fine_tune_iters", 50)),
                rng=rng,
                on_progress=ProgressReporter(ctx, job, ctx.settings.progress_interval_s),
                should_stop=CancelCheck(ctx, job.id, ctx.settings.cancel_poll_interval_s, job.attempts),
            )
        out = engine.harmonize(trained, naive, mask, stage=int(params.get("stage", 0)), rng=rng)
    except engine.TrainingCanceled:
        return _finish_canceled(ctx, job)
    except ValueError as e:
        return _fail(ctx, job, str(e))
    return _store_result(ctx, job, model, out, trained if params.get("fine_tune") else None)


def _store_result(
    ctx: WorkerContext, job: Job, model: Model, out: torch.Tensor, tuned: engine.TrainedModel | None
) -> str:
    keys = [job_object_key(model.id, job.id, RESULT)]
    ctx.storage.put(keys[0], engine.to_png_bytes(out), "image/png")
    if tuned is not None:
        keys.append(job_object_key(model.id, job.id, CHECKPOINT))
        ctx.storage.put(keys[1], engine.checkpoint.to_bytes(tuned), "application/octet-stream")
    with transaction(ctx) as session:
        if session.get(Model, model.id) is None:
            raise JobGone(job.id)
        if jobs.succeed(session, job, attempt=job.attempts):  # fenced: a re-queued attempt lost
            return JobState.SUCCEEDED
        session.rollback()
    state = _current_state(ctx, job.id)
    if state != JobState.SUCCEEDED:
        # canceled or failed meanwhile: these outputs belong to nothing. (When another attempt of this job
        # succeeded, the keys are its keys too: deleting them would lose its result.)
        for key in keys:
            ctx.storage.delete(key)
    return state
