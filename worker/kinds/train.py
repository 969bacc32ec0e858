"""The `train` job: the model's pyramid, stage by stage, with a snapshot and a preview after each stage (the
last one too) so a re-queued job resumes where the last attempt stopped; then the checkpoint and a few
preview samples. A model created with `sr_factor` is usable as soon as this ends: its super-resolution head is
a `train_sr_head` job of its own, created in the transaction that ends this one. A cancel that asks to keep
the stages trained so far ends the model `succeeded` with the last finished stage's snapshot."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from sqlalchemy.orm import Session

import engine
from core import estimates, jobs, training
from core.models import Job, JobKind, JobState, Model
from core.storage import ObjectNotFound, checkpoint_key, stage_key, stage_preview_key
from engine.harmonization import render as render_injection
from engine.spec import request_config
from worker import outcomes
from worker.artifacts import Stored, sample_in_batches, store_samples
from worker.runtime import CancelCheck, WorkerContext, measured_speeds, progress_reporter

log = logging.getLogger(__name__)

STAGE_PREVIEW_SEED_OFFSET = 2  # the model's seed trains, seed + 1 draws the final previews
SR_HEAD_SEED_OFFSET = 3  # and seed + 3 trains its super-resolution head
INJECTING_MODES = frozenset({"harmonization", "editing"})  # previews: their own image injected at stage 0


def run(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    try:
        cfg = request_config(model.params)  # the rule the API checked the upload with
        image = engine.load_image(ctx.storage.get(model.input_key))
    except ValueError as e:
        return outcomes.fail(ctx, job, str(e))

    def record_config() -> None:
        with ctx.db.transaction() as session:
            session.get_one(Model, model.id).train_config = cfg.to_dict()

    ctx.retry(record_config, "record the training config")
    device = ctx.device
    try:
        trained = engine.train(
            image,
            cfg,
            device=device,
            rng=engine.make_rng(int(model.params.get("seed", 0)), device),
            on_progress=progress_reporter(ctx, job, training_plan(ctx, model)),
            should_stop=CancelCheck(ctx, job),
            on_stage_done=_stage_snapshotter(ctx, job, model),
            resume=_resume_from(ctx, job, model, device),
        )
    except engine.TrainingCanceled:
        return _stop(ctx, job, model, device)
    return _store(ctx, job, model, trained)


def training_plan(ctx: WorkerContext, model: Model) -> estimates.TrainingPlan | None:
    """The stages this training will run and their predicted seconds on this device (core.estimates): the
    running ETA is based on it, and each stage's measured pace is kept against it. The SR head is a job of
    its own (train_sr_head), with its own plan."""
    speeds = measured_speeds(ctx)
    if speeds is None:
        return None
    try:
        pyramid = training.pyramid(model.image_width, model.image_height, model.params)
    except ValueError:
        return None  # the engine says why when it trains
    return estimates.plan_training(pyramid.config, pyramid.stage_sizes, speeds)


def _stop(ctx: WorkerContext, job: Job, model: Model, device: str) -> JobState:
    """The training stopped on its cancel flag: discarded, or, when the cancel asked to keep the stages
    trained so far (`keep_trained_stages`) and one finished, the model succeeds with them."""

    def read() -> Job | None:
        with ctx.db.read() as session:
            return session.get(Job, job.id)

    row = ctx.retry(read, "read the cancel request")
    keep = (
        row is not None
        and row.keep_trained_stages
        and row.state == JobState.RUNNING
        and row.attempts == job.attempts  # a stop because another attempt owns the job keeps nothing
        and row.stages_done >= 1
    )
    if not keep:
        return outcomes.finish_canceled(ctx, job)
    assert row is not None
    return _keep_stages(ctx, job, model, row.stages_done, device)


def _keep_stages(ctx: WorkerContext, job: Job, model: Model, stages: int, device: str) -> JobState:
    """The last finished stage's snapshot becomes the model's checkpoint: a smaller model (it draws at that
    stage's size) that samples, animates and harmonizes like any other. No super-resolution head is
    trained for it (a head is trained on a complete pyramid)."""
    blob = ctx.storage.get(stage_key(model.id, stages - 1))
    partial = engine.checkpoint.from_bytes(blob, device=device)
    planned = partial.num_stages
    log.info(
        "training canceled; the stages trained so far are kept",
        extra={"job_id": job.id, "model_id": model.id, "stages_trained": stages, "stages_planned": planned},
    )
    return _finish_model(
        ctx,
        job,
        model,
        blob,
        partial,
        result={"stages_trained": stages, "stages_planned": planned, "kept_on_cancel": True},
        message=f"canceled after {stages} of {planned} stages; the model keeps the {stages} trained",
    )


def _stage_snapshotter(ctx: WorkerContext, job: Job, model: Model) -> Callable[[engine.TrainedModel], None]:
    def on_stage_done(partial: engine.TrainedModel) -> None:
        # The final stage too: its preview shows when it ends (not when the job does), and a crash before the
        # result is committed resumes from its snapshot instead of training it again.
        stage = partial.stages_done - 1
        ctx.storage.put(
            stage_key(model.id, stage), engine.checkpoint.to_bytes(partial), "application/octet-stream"
        )
        # Both writes go through the worker's retrying storage and `ctx.retry`: a storage or database blink
        # waits instead of failing the stage (and past the budget the job is given back, not failed).
        preview = _store_stage_preview(ctx, model, partial)

        def record() -> None:
            with ctx.db.transaction() as session:
                jobs.record_stage_done(
                    session, job.id, partial.stages_done, attempt=job.attempts, preview=preview
                )

        ctx.retry(record, "record the finished stage")

    return on_stage_done


def _store_stage_preview(ctx: WorkerContext, model: Model, partial: engine.TrainedModel) -> dict[str, int]:
    """One sample of the partial model at its newest stage: what it draws so far. The same seed at every
    stage, so the coarse noise repeats and the previews show one scene growing finer. A harmonization or
    editing model shows its own image injected at the injection stage instead: what a harmonization looks
    like (random noise at stage 0 is static for these models). One small image, a single generator pass:
    cheap next to a stage's training. Returns its width and height."""
    rng = engine.make_rng(int(model.params.get("seed", 0)) + STAGE_PREVIEW_SEED_OFFSET, partial.device)
    image = _preview_images(partial, 1, rng)[0]  # [3, H, W]
    key = stage_preview_key(model.id, partial.stages_done - 1)
    ctx.storage.put(key, engine.to_png_bytes(image), "image/png")
    return {"width": int(image.shape[-1]), "height": int(image.shape[-2])}


def _resume_from(ctx: WorkerContext, job: Job, model: Model, device: str) -> engine.TrainedModel | None:
    """A job re-queued after a crash continues from its last stored stage instead of from zero; one whose
    earlier attempt finished training and lost its success commit (the database went away) starts from that
    attempt's complete checkpoint and only stores the result."""
    if job.attempts > 1:
        try:
            complete = engine.checkpoint.from_bytes(ctx.storage.get(checkpoint_key(model.id)), device=device)
        except ObjectNotFound:
            complete = None
        if complete is not None and complete.is_complete:
            log.info(
                "training already complete; storing the result",
                extra={"job_id": job.id, "model_id": model.id},
            )
            return complete
    if job.stages_done <= 0:
        return None
    try:
        blob = ctx.storage.get(stage_key(model.id, job.stages_done - 1))
    except ObjectNotFound:
        return None
    log.info(
        "resuming training", extra={"job_id": job.id, "model_id": model.id, "stages_done": job.stages_done}
    )
    return engine.checkpoint.from_bytes(blob, device=device)


def _store(ctx: WorkerContext, job: Job, model: Model, trained: engine.TrainedModel) -> JobState:
    return _finish_model(ctx, job, model, engine.checkpoint.to_bytes(trained), trained)


def _finish_model(
    ctx: WorkerContext,
    job: Job,
    model: Model,
    blob: bytes,
    trained: engine.TrainedModel,
    result: dict[str, Any] | None = None,
    message: str | None = None,
) -> JobState:
    """`trained` (serialized as `blob`) becomes the model's checkpoint, with its previews, and the model
    succeeds: every stage, or those kept on a cancel. The checkpoint key is the model's (every attempt writes
    the same one): shared, never deleted on losing. Only a complete model gets its SR head queued."""
    ctx.storage.put(checkpoint_key(model.id), blob, "application/octet-stream")
    previews = _store_previews(ctx, job, model, trained)
    complete = trained.is_complete

    def point_at_checkpoint(row: Model) -> None:
        row.checkpoint_key = checkpoint_key(model.id)
        row.stages_trained = None if complete else trained.stages_done  # None: all of them

    return outcomes.commit_result(
        ctx,
        job,
        owned_keys=previews.owned_keys,
        shared_keys=[checkpoint_key(model.id)],
        rows=previews.rows,
        result=result,
        update_model=point_at_checkpoint,
        message=message,
        follow_up=_queue_sr_head if complete else None,
    )


def _queue_sr_head(session: Session, row: Model) -> None:
    """A model created with `sr_factor` gets its head from a `train_sr_head` job of its own, created in the
    transaction that ends the training (and sent after its commit): the model is usable at once, and the
    head's progress, failure or cancel are its own. Its seed is the model's + SR_HEAD_SEED_OFFSET, as when
    the head was a phase of this job."""
    factor = row.params.get("sr_factor")
    if factor is None:
        return
    params = {
        "factor": float(factor),
        "iterations": row.params.get("sr_iters"),
        "replace": False,
        "seed": int(row.params.get("seed", 0)) + SR_HEAD_SEED_OFFSET,
        "after_training": True,  # in the job's params as clients read them: queued by the training itself
    }
    head_job = jobs.create_job(session, row, JobKind.TRAIN_SR_HEAD, params)
    log.info("super-resolution head queued", extra={"model_id": row.id, "job_id": head_job.id})


def _store_previews(ctx: WorkerContext, job: Job, model: Model, trained: engine.TrainedModel) -> Stored:
    """The training's preview samples. A harmonization or editing model's first preview is its own image
    injected at stage 0 (what a harmonization does to it); the rest are its samples, which start from an
    augmented copy of its image (`engine.sample`), as the original's do."""
    rng = engine.make_rng(int(model.params.get("seed", 0)) + 1, trained.device)
    return store_samples(
        ctx, job, model, _preview_images(trained, ctx.settings.preview_samples, rng), preview=True
    )


def _preview_images(trained: engine.TrainedModel, count: int, rng: torch.Generator) -> torch.Tensor:
    """`count` previews, [count, 3, H, W] on CPU: samples, or for a harmonization or editing model its own
    image injected at stage 0 first, then samples."""
    if trained.config.mode not in INJECTING_MODES:
        return sample_in_batches(trained, count, rng)
    injected = _injection(trained, rng).cpu()
    return torch.cat([injected, sample_in_batches(trained, count - 1, rng)]) if count > 1 else injected


def _injection(trained: engine.TrainedModel, rng: torch.Generator) -> torch.Tensor:
    """The model's own (newest-stage) image put in at stage 0 and rendered: [1, 3, H, W]."""
    with torch.no_grad():
        return render_injection(trained, trained.image, stage=0, rng=rng)
