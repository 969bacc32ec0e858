"""The `train` job: the model's pyramid, stage by stage, with a snapshot after each stage so a re-queued job
resumes where the last attempt stopped; then the checkpoint, the super-resolution head when the request asked
for one (`sr_factor`: one more phase of the same job), and a few preview samples."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import engine
from core import jobs
from core.models import Job, JobState, Model
from core.storage import ObjectNotFound, checkpoint_key, sr_head_key, stage_key, stage_preview_key
from engine.spec import request_config
from worker import outcomes
from worker.artifacts import sample_in_batches, sr_head_config, store_samples, store_sr_head
from worker.runtime import CancelCheck, WorkerContext, progress_reporter

ProgressCallback = Callable[[engine.Progress], None]

log = logging.getLogger(__name__)

STAGE_PREVIEW_SEED_OFFSET = 2  # the model's seed trains, seed + 1 draws the final previews
SR_HEAD_SEED_OFFSET = 3  # and seed + 3 trains its super-resolution head


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
    with_head = model.params.get("sr_factor") is not None
    report = progress_reporter(ctx, job)
    should_stop = CancelCheck(ctx, job)
    try:
        trained = engine.train(
            image,
            cfg,
            device=device,
            rng=engine.make_rng(int(model.params.get("seed", 0)), device),
            on_progress=pyramid_phase(report, cfg.train_stages) if with_head else report,
            should_stop=should_stop,
            on_stage_done=_stage_snapshotter(ctx, job, model),
            resume=_resume_from(ctx, job, model, device),
        )
        head = (
            _train_head(ctx, model, trained, head_phase(report, cfg.train_stages), should_stop)
            if with_head
            else None
        )
    except engine.TrainingCanceled:
        return outcomes.finish_canceled(ctx, job)
    return _store(ctx, job, model, trained, head)


def pyramid_phase(report: ProgressCallback, stages: int) -> ProgressCallback:
    """With a head to train after it, the pyramid is the first `stages` of `stages + 1` phases."""
    share = stages / (stages + 1)

    def on_progress(progress: engine.Progress) -> None:
        eta = None if progress.eta_s is None else progress.eta_s + _whole(progress) * (1 - share)
        report(
            dataclasses.replace(
                progress, num_stages=stages + 1, fraction_done=progress.fraction_done * share, eta_s=eta
            )
        )

    return on_progress


def head_phase(report: ProgressCallback, stages: int) -> ProgressCallback:
    """The head's training, reported as the last stage (`stages` of `stages + 1`)."""
    share = stages / (stages + 1)

    def on_progress(progress: engine.Progress) -> None:
        fraction = share + progress.fraction_done * (1 - share)
        report(dataclasses.replace(progress, stage=stages, num_stages=stages + 1, fraction_done=fraction))

    return on_progress


def _whole(progress: engine.Progress) -> float:
    """Seconds a whole phase takes at this pace."""
    return progress.elapsed_s / progress.fraction_done if progress.fraction_done > 0 else 0.0


def _train_head(
    ctx: WorkerContext,
    model: Model,
    trained: engine.TrainedModel,
    on_progress: ProgressCallback,
    should_stop: Callable[[], bool],
) -> engine.SRHead:
    cfg = sr_head_config(model, model.params.get("sr_factor"), model.params.get("sr_iters"))
    log.info("training the super-resolution head", extra={"model_id": model.id, "sr_train": cfg.sr_train})
    rng = engine.make_rng(int(model.params.get("seed", 0)) + SR_HEAD_SEED_OFFSET, trained.device)
    return engine.train_sr_head(trained, cfg, rng=rng, on_progress=on_progress, should_stop=should_stop)


def _stage_snapshotter(ctx: WorkerContext, job: Job, model: Model) -> Callable[[engine.TrainedModel], None]:
    def on_stage_done(partial: engine.TrainedModel) -> None:
        if partial.is_complete:
            return  # the final checkpoint and its previews are stored with the result
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
    stage, so the coarse noise repeats and the previews show one scene growing finer. One small image, a
    single generator pass: cheap next to a stage's training. Returns its width and height."""
    rng = engine.make_rng(int(model.params.get("seed", 0)) + STAGE_PREVIEW_SEED_OFFSET, partial.device)
    image = engine.sample(partial, n=1, rng=rng)[0].cpu()  # [3, H, W]
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


def _store(
    ctx: WorkerContext, job: Job, model: Model, trained: engine.TrainedModel, head: engine.SRHead | None
) -> JobState:
    # The checkpoint and head keys are the model's (every attempt writes the same ones): shared, never
    # deleted on losing.
    ctx.storage.put(checkpoint_key(model.id), engine.checkpoint.to_bytes(trained), "application/octet-stream")
    head_facts = store_sr_head(ctx, model, head) if head is not None else None
    rng = engine.make_rng(int(model.params.get("seed", 0)) + 1, trained.device)
    previews = store_samples(
        ctx, job, model, sample_in_batches(trained, ctx.settings.preview_samples, rng), preview=True
    )

    def point_at_checkpoint(row: Model) -> None:
        row.checkpoint_key = checkpoint_key(model.id)
        if head_facts is not None:
            row.sr_head = head_facts

    return outcomes.commit_result(
        ctx,
        job,
        owned_keys=previews.owned_keys,
        shared_keys=[checkpoint_key(model.id), sr_head_key(model.id)],
        rows=previews.rows,
        update_model=point_at_checkpoint,
    )
