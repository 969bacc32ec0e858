"""The glue between core (database, storage, state machine) and the engine (PyTorch ConSinGAN).

A job id goes in; the job's row says what to do. Claiming is a conditional UPDATE, so a second delivery of the
same task (Celery redelivers long tasks after the visibility timeout) returns quietly. No transaction stays
open while the GPU works: every database touch is a short session of its own.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import torch
from sqlalchemy import select

import engine
from core import jobs, webhooks
from core.db import Database
from core.models import Job, JobKind, JobState, Model, Sample, utcnow
from core.queue import JobQueue, QueueUnavailable, make_queue
from core.service import new_sample_id
from core.settings import Settings
from core.storage import Storage, checkpoint_key, make_storage, model_prefix, sample_key, stage_key
from worker import metrics

log = logging.getLogger(__name__)

PROGRESS_MILESTONES = (25, 50, 75)  # percent; each crossing becomes a job event


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    storage: Storage
    queue: JobQueue
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @property
    def device(self) -> str:
        # Resolved per job, in the process that trains: CUDA must not be touched before a fork.
        if self.settings.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.settings.device


def build_context(settings: Settings) -> WorkerContext:
    return WorkerContext(
        settings, Database(settings.database_url), make_storage(settings), make_queue(settings)
    )


@contextmanager
def transaction(ctx: WorkerContext) -> Iterator[Any]:
    """A committed unit of work; webhook outbox rows it created are sent to the queue after the commit."""
    with ctx.db.session() as session:
        yield session
        new_deliveries = list(session.info.pop(webhooks.NEW_DELIVERIES, []))
    for delivery_id in new_deliveries:
        with suppress(QueueUnavailable):  # the periodic sweep sends it later
            ctx.queue.send_webhook(delivery_id)


class JobGone(Exception):
    """The job's row was deleted (its model was deleted) while the job ran."""


# --- entry point ----------------------------------------------------------------------------------------


def run_job(ctx: WorkerContext, job_id: str) -> str | None:
    """Claim and run one job. Returns its final state, or None when there was nothing to do."""
    with transaction(ctx) as session:
        if not jobs.claim(session, job_id, ctx.name, ctx.settings.max_attempts):
            log.info("job not claimed (gone, taken or canceled)", extra={"job_id": job_id})
            return None
    try:
        job, model = _load(ctx, job_id)
    except JobGone:
        return None
    extra = {"job_id": job.id, "model_id": model.id, "kind": job.kind}
    log.info("job started", extra={**extra, "attempt": job.attempts, "device": ctx.device})
    started = time.monotonic()
    try:
        with Heartbeat(ctx, job.id, job.attempts, ctx.settings.heartbeat_interval_s):
            state = _run_guarded(ctx, job, model)
    except JobGone:
        ctx.storage.delete_prefix(model_prefix(model.id))
        log.info("job's model was deleted while it ran; output discarded", extra=extra)
        return None
    seconds = time.monotonic() - started
    log.info("job ended", extra={**extra, "state": state, "seconds": round(seconds, 2)})
    wait_s = (job.started_at - job.created_at).total_seconds() if job.started_at and job.created_at else None
    metrics.observe_job(job.kind, state, seconds, wait_s, ctx.device)
    return state


class Heartbeat:
    """While an attempt runs, a daemon thread stamps the job's `heartbeat_at` every `interval_s` (fenced by the
    attempt number). The reaper re-queues a running job whose stamp got old: this worker died."""

    def __init__(self, ctx: WorkerContext, job_id: str, attempt: int, interval_s: float) -> None:
        self.ctx, self.job_id, self.attempt, self.interval_s = ctx, job_id, attempt, interval_s
        self.stopped = threading.Event()
        self.lost = False  # the row says this attempt is over (ended, re-queued, re-claimed, deleted)
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                with self.ctx.db.session() as session:
                    alive = jobs.heartbeat(session, self.job_id, self.attempt)
            except Exception:  # a database blip: try again next beat; the timeout allows for a few
                log.warning("heartbeat failed", extra={"job_id": self.job_id}, exc_info=True)
                continue
            if not alive:
                self.lost = True
                return


def _load(ctx: WorkerContext, job_id: str) -> tuple[Job, Model]:
    with ctx.db.sessions() as session:
        job = session.get(Job, job_id)
        model = session.get(Model, job.model_id) if job else None
        if job is None or model is None:
            raise JobGone(job_id)
        session.expunge_all()
    return job, model


def _run_guarded(ctx: WorkerContext, job: Job, model: Model) -> str:
    """Any error fails the job with its reason; the task itself then ends normally (no Celery retry)."""
    try:
        return _run_kind(ctx, job, model)
    except JobGone:
        raise
    except Exception as e:
        log.exception("job crashed", extra={"job_id": job.id, "model_id": model.id})
        return _fail(ctx, job, f"{type(e).__name__}: {e}")


def _run_kind(ctx: WorkerContext, job: Job, model: Model) -> str:
    if job.kind == JobKind.TRAIN:
        return run_training(ctx, job, model)
    if job.kind == JobKind.SAMPLE:
        return run_sampling(ctx, job, model)
    if job.kind == JobKind.HARMONIZE:
        from worker.harmonization import run_harmonization  # its own module, which imports this one

        return run_harmonization(ctx, job, model)
    return _fail(ctx, job, f"{job.kind} jobs are not supported by this worker yet")


def _fail(ctx: WorkerContext, job: Job, reason: str) -> str:
    with transaction(ctx) as session:
        won = jobs.fail(session, job, reason, attempt=job.attempts)
    return JobState.FAILED if won else _current_state(ctx, job.id)


def _current_state(ctx: WorkerContext, job_id: str) -> str:
    with ctx.db.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobGone(job_id)
        return job.state


# --- training -------------------------------------------------------------------------------------------


def training_config(params: dict[str, Any]) -> engine.TrainConfig:
    """The API's request params -> the engine's config. Raises ValueError with the engine's reasons."""
    preset, mode = params.get("preset", "paper"), params.get("mode", "generation")
    names = ("train_stages", "iters_per_stage", "lr_scale", "max_size", "min_size")
    overrides = {name: params[name] for name in names if name in params}
    if "max_size" in overrides and "min_size" not in overrides:
        # A small max_size must not fall below the preset's own min_size (e.g. max_size=20 with quick's 25).
        overrides["min_size"] = min(engine.TrainConfig.preset(preset, mode).min_size, overrides["max_size"])
    return engine.TrainConfig.preset(preset, mode=mode, **overrides)


class ProgressReporter:
    """Called every iteration by the engine; writes to the database at most every `interval_s`."""

    def __init__(self, ctx: WorkerContext, job: Job, interval_s: float) -> None:
        self.ctx, self.job, self.interval_s = ctx, job, interval_s
        self.last_write = 0.0
        self.milestones_passed = 0

    def __call__(self, progress: engine.Progress) -> None:
        now = time.monotonic()
        final_iteration = (
            progress.stage == progress.num_stages - 1 and progress.iteration == progress.iters_per_stage
        )
        if now - self.last_write < self.interval_s and not final_iteration:
            return
        self.last_write = now
        percent = round(100.0 * progress.fraction_done, 1)
        data = {
            "stage": progress.stage,
            "num_stages": progress.num_stages,
            "iteration": progress.iteration,
            "iters_per_stage": progress.iters_per_stage,
            "percent": percent,
            "elapsed_s": round(progress.elapsed_s, 2),
            "eta_s": None if progress.eta_s is None else round(progress.eta_s, 1),
            "losses": {k: round(v, 5) for k, v in progress.losses.items()},
        }
        with self.ctx.db.session() as session:
            if not jobs.record_progress(session, self.job.id, data, attempt=self.job.attempts):
                return
            while (
                self.milestones_passed < len(PROGRESS_MILESTONES)
                and percent >= PROGRESS_MILESTONES[self.milestones_passed]
            ):
                jobs.add_event(
                    session,
                    self.job.id,
                    "progress",
                    f"{PROGRESS_MILESTONES[self.milestones_passed]}% done",
                    data,
                )
                self.milestones_passed += 1
        log.info("training progress", extra={"job_id": self.job.id, "model_id": self.job.model_id, **data})


class CancelCheck:
    """The engine's `should_stop`: re-reads the job's cancel flag at most every `interval_s`. Also stops when
    the attempt is no longer ours (a reaper re-queued the job and another worker claimed it)."""

    def __init__(
        self, ctx: WorkerContext, job_id: str, interval_s: float, attempt: int | None = None
    ) -> None:
        self.ctx, self.job_id, self.interval_s, self.attempt = ctx, job_id, interval_s, attempt
        self.last_check = time.monotonic()
        self.stop = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.stop or now - self.last_check < self.interval_s:
            return self.stop
        self.last_check = now
        with self.ctx.db.sessions() as session:
            query = select(Job.cancel_requested, Job.state, Job.attempts).where(Job.id == self.job_id)
            row = session.execute(query).first()
        self.stop = (
            row is None
            or bool(row.cancel_requested)
            or row.state != JobState.RUNNING
            or (self.attempt is not None and row.attempts != self.attempt)
        )
        return self.stop


def _stage_snapshotter(ctx: WorkerContext, job: Job, model: Model) -> Any:
    def on_stage_done(partial: engine.TrainedModel) -> None:
        if partial.is_complete:
            return  # the final checkpoint is stored with the result
        ctx.storage.put(
            stage_key(model.id, partial.stages_done - 1),
            engine.checkpoint.to_bytes(partial),
            "application/octet-stream",
        )
        with ctx.db.session() as session:
            jobs.record_stage_done(session, job.id, partial.stages_done, attempt=job.attempts)

    return on_stage_done


def _resume_from(ctx: WorkerContext, job: Job, model: Model, device: str) -> engine.TrainedModel | None:
    """A job re-queued after a crash continues from its last stored stage instead of from zero."""
    if job.stages_done <= 0:
        return None
    try:
        blob = ctx.storage.get(stage_key(model.id, job.stages_done - 1))
    except KeyError:
        return None
    log.info(
        "resuming training", extra={"job_id": job.id, "model_id": model.id, "stages_done": job.stages_done}
    )
    return engine.checkpoint.from_bytes(blob, device=device)


def run_training(ctx: WorkerContext, job: Job, model: Model) -> str:
    try:
        cfg = training_config(model.params)
        image = engine.load_image(ctx.storage.get(model.input_key))
    except ValueError as e:
        return _fail(ctx, job, str(e))
    device = ctx.device
    with ctx.db.session() as session:
        session.get_one(Model, model.id).train_config = cfg.to_dict()
    try:
        trained = engine.train(
            image,
            cfg,
            device=device,
            rng=engine.make_rng(int(model.params.get("seed", 0)), device),
            on_progress=ProgressReporter(ctx, job, ctx.settings.progress_interval_s),
            should_stop=CancelCheck(ctx, job.id, ctx.settings.cancel_poll_interval_s, job.attempts),
            on_stage_done=_stage_snapshotter(ctx, job, model),
            resume=_resume_from(ctx, job, model, device),
        )
    except engine.TrainingCanceled:
        return _finish_canceled(ctx, job)
    return _store_training_result(ctx, job, model, trained)


def _finish_canceled(ctx: WorkerContext, job: Job) -> str:
    with transaction(ctx) as session:
        if jobs.mark_canceled(session, job, attempt=job.attempts):
            return JobState.CANCELED
    return _current_state(ctx, job.id)


SAMPLE_BATCH = 8  # images per engine.sample call: bounds GPU memory for large n at 2x scale


def sample_in_batches(
    trained: engine.TrainedModel,
    n: int,
    rng: torch.Generator,
    scale: tuple[float, float] = (1.0, 1.0),
    start_stage: int = 0,
) -> torch.Tensor:
    """n samples drawn SAMPLE_BATCH at a time from one generator (reproducible for a seed): [n, 3, H, W] on CPU."""
    batches = []
    with torch.no_grad():
        for first in range(0, n, SAMPLE_BATCH):
            count = min(SAMPLE_BATCH, n - first)
            batches.append(
                engine.sample(trained, n=count, rng=rng, scale=scale, start_stage=start_stage).cpu()
            )
    return torch.cat(batches)


def _store_samples(
    ctx: WorkerContext, job: Job, model: Model, images: torch.Tensor, preview: bool
) -> list[Sample]:
    """Objects first; the rows are added by the caller in the transaction that finishes the job."""
    rows = []
    for image in images:  # [3, H, W]
        sample_id = new_sample_id()
        png = engine.to_png_bytes(image)
        key = sample_key(model.id, sample_id)
        ctx.storage.put(key, png, "image/png")
        rows.append(
            Sample(
                id=sample_id,
                owner_id=model.owner_id,
                model_id=model.id,
                job_id=job.id,
                key=key,
                width=int(image.shape[-1]),
                height=int(image.shape[-2]),
                size_bytes=len(png),
                is_preview=preview,
                created_at=utcnow(),
            )
        )
    return rows


def _store_training_result(ctx: WorkerContext, job: Job, model: Model, trained: engine.TrainedModel) -> str:
    ctx.storage.put(checkpoint_key(model.id), engine.checkpoint.to_bytes(trained), "application/octet-stream")
    seed = int(model.params.get("seed", 0)) + 1
    previews = sample_in_batches(trained, ctx.settings.preview_samples, engine.make_rng(seed, trained.device))
    rows = _store_samples(ctx, job, model, previews, preview=True)
    with transaction(ctx) as session:
        db_model = session.get(Model, model.id)
        if db_model is None:
            raise JobGone(job.id)
        db_model.checkpoint_key = checkpoint_key(model.id)
        session.add_all(rows)
        session.flush()
        if jobs.succeed(session, job, attempt=job.attempts):
            return JobState.SUCCEEDED
        session.rollback()
    _discard(ctx, rows)
    return _current_state(ctx, job.id)


# --- sampling -------------------------------------------------------------------------------------------


def run_sampling(ctx: WorkerContext, job: Job, model: Model) -> str:
    params = job.params
    if not model.checkpoint_key:
        return _fail(ctx, job, "the model has no checkpoint; train it first")
    trained = engine.checkpoint.from_bytes(ctx.storage.get(model.checkpoint_key), device=ctx.device)
    try:
        images = sample_in_batches(
            trained,
            int(params.get("n", 4)),
            engine.make_rng(int(params.get("seed", 0)), trained.device),
            scale=(float(params.get("scale_h", 1.0)), float(params.get("scale_w", 1.0))),
            start_stage=int(params.get("start_stage", 0)),
        )
    except ValueError as e:
        return _fail(ctx, job, str(e))
    rows = _store_samples(ctx, job, model, images, preview=False)
    with transaction(ctx) as session:
        if session.get(Model, model.id) is None:
            raise JobGone(job.id)
        session.add_all(rows)
        session.flush()
        if jobs.succeed(session, job, attempt=job.attempts):
            return JobState.SUCCEEDED
        session.rollback()
    _discard(ctx, rows)
    return _current_state(ctx, job.id)


def _discard(ctx: WorkerContext, rows: list[Sample]) -> None:
    """The job ended some other way meanwhile (e.g. re-queued by a reaper): these images belong to nothing."""
    for row in rows:
        ctx.storage.delete(row.key)
