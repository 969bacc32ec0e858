"""What a running job stands on: its context, transactions, the heartbeat, progress reports and the cancel check.

The bottom layer of the worker (run -> kinds -> outcomes -> runtime): it knows core and the engine's progress
type, nothing of job kinds. No transaction stays open while the GPU works: every database touch is short.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from sqlalchemy import select

import engine
from core import estimates, jobs
from core.db import Database
from core.infra import is_unavailable, retry_unavailable
from core.models import Job, JobEventType, JobState
from core.queue import JobQueue, make_queue
from core.settings import Settings
from core.storage import RetryingStorage, Storage, make_storage
from core.unit_of_work import UnitOfWork
from core.vocabulary import Lane
from worker.model_cache import ModelCache

log = logging.getLogger(__name__)
T = TypeVar("T")

PROGRESS_MILESTONES = (25, 50, 75)  # percent; each crossing becomes a job event


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    storage: Storage
    queue: JobQueue
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    lane: Lane = "long"  # the lane this context's worker serves (metrics; the cache below)
    models: ModelCache | None = (
        None  # the interactive lane's loaded models; None: load from storage each time
    )

    @property
    def device(self) -> str:
        # Resolved per job, in the process that trains: CUDA must not be touched before a fork.
        if self.settings.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.settings.device

    @property
    def device_kind(self) -> str:
        """What measured paces are kept against: "cpu", or "cuda:<the GPU's name>" (an H200 is not a T4)."""
        device = self.device
        if device.startswith("cuda") and torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
        return device

    def transaction(self) -> UnitOfWork:
        """A unit of work whose commit also sends the webhooks it wrote (`with ctx.transaction() as uow`)."""
        return UnitOfWork(self.db, self.queue)

    def retry(self, fn: Callable[[], T], what: str) -> T:
        """`fn()` retried while the database, broker or storage is unavailable, for `infra_retry_s`; then
        `core.infra.StillUnavailable` (run_job gives the job back). `fn` must be safe to run again: a short
        transaction of its own, or a conditional UPDATE."""
        return retry_unavailable(fn, self.settings.infra_retry_s, what)


def build_context(settings: Settings, lane: Lane = "long") -> WorkerContext:
    """A worker's context. The interactive lane's keeps loaded models (budget: `model_cache_bytes`)."""
    db = Database(settings.database_url, connect_timeout_s=settings.database_connect_timeout_s)
    storage = RetryingStorage(make_storage(settings), settings.infra_retry_s)
    cache = (
        ModelCache(settings.model_cache_bytes)
        if lane == "interactive" and settings.model_cache_bytes
        else None
    )
    return WorkerContext(settings, db, storage, make_queue(settings), lane=lane, models=cache)


class JobGone(Exception):
    """The job's row was deleted (its model was deleted) while the job ran."""


def current_state(ctx: WorkerContext, job_id: str) -> JobState:
    def read() -> JobState:
        with ctx.db.read() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise JobGone(job_id)
            return JobState(job.state)

    return ctx.retry(read, "read the job's state")


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
                with self.ctx.db.transaction() as session:
                    alive = jobs.heartbeat(session, self.job_id, self.attempt)
            except Exception:  # a database blip: try again next beat; the timeout allows for a few
                log.warning("heartbeat failed", extra={"job_id": self.job_id}, exc_info=True)
                continue
            if not alive:
                self.lost = True
                return


class SpeedRecorder:
    """Sees every progress report of a planned training and, at the end of each phase (a stage, the head),
    records the seconds per iteration it took (`core.estimates.record_speed`): from the previous phase's end
    (so a stage's snapshot and preview count), or for the first phase this attempt trains, from its first
    report. A write that fails (the database away, or any other error) loses the measurement, never the training."""

    def __init__(self, ctx: WorkerContext, plan: estimates.TrainingPlan) -> None:
        self.ctx, self.plan = ctx, plan
        self.first: dict[int, tuple[int, float]] = {}
        self.last_end: tuple[int, float] | None = None

    def see(self, progress: engine.Progress) -> None:
        now, index = time.monotonic(), progress.stage
        self.first.setdefault(index, (progress.iteration, now))
        if progress.iteration != progress.iters_per_stage or index >= len(self.plan.phases):
            return
        if self.last_end is not None and self.last_end[0] == index - 1:
            iterations, seconds = progress.iteration, now - self.last_end[1]
        else:
            first_iteration, started = self.first[index]
            iterations, seconds = progress.iteration - first_iteration, now - started
        self.last_end = (index, now)
        phase = self.plan.phases[index]
        try:
            with self.ctx.db.transaction() as session:
                estimates.record_speed(
                    session,
                    device=self.plan.device,
                    phase=phase.kind,
                    stage=phase.index,
                    pixels=phase.pixels,
                    channels=phase.channels,
                    iterations=iterations,
                    seconds=seconds,
                )
        except Exception as e:  # a measurement is never worth a training: log it and train on
            if is_unavailable(e):
                log.warning("pace not recorded; database unavailable", extra={"stage": index})
            else:
                log.exception("pace not recorded", extra={"stage": index})


class ProgressReporter:
    """Called every iteration by the engine; writes to the database at most every `interval_s`. With a plan
    (`core.estimates`), the ETA is the plan's blended with the observed pace, and each phase's pace is kept."""

    def __init__(
        self, ctx: WorkerContext, job: Job, interval_s: float, plan: estimates.TrainingPlan | None = None
    ) -> None:
        self.ctx, self.job, self.interval_s = ctx, job, interval_s
        self.last_write = 0.0
        self.milestones_passed = 0
        self.eta = estimates.Eta(plan) if plan is not None else None
        self.speeds = SpeedRecorder(ctx, plan) if plan is not None else None

    def __call__(self, progress: engine.Progress) -> None:
        if self.speeds is not None:
            self.speeds.see(progress)
        if self.eta is not None:
            progress = dataclasses.replace(progress, eta_s=self.eta(progress.stage, progress.iteration))
        now = time.monotonic()
        final_iteration = (
            progress.stage == progress.num_stages - 1 and progress.iteration == progress.iters_per_stage
        )
        if now - self.last_write < self.interval_s and not final_iteration:
            return
        self.last_write = now
        data = progress_data(progress)
        percent = 100.0 * progress.fraction_done
        try:
            with self.ctx.db.transaction() as session:
                if not jobs.record_progress(session, self.job.id, data, attempt=self.job.attempts):
                    return
                while (
                    self.milestones_passed < len(PROGRESS_MILESTONES)
                    and percent >= PROGRESS_MILESTONES[self.milestones_passed]
                ):
                    message = f"{PROGRESS_MILESTONES[self.milestones_passed]}% done"
                    jobs.add_event(session, self.job.id, JobEventType.PROGRESS, message, data)
                    self.milestones_passed += 1
        except Exception as e:
            if not is_unavailable(e):
                raise
            # Progress is a report, not the work: training goes on, the next report writes again.
            log.warning("progress not recorded; database unavailable", extra={"job_id": self.job.id})
            return
        log.info("training progress", extra={"job_id": self.job.id, "model_id": self.job.model_id, **data})


def progress_data(progress: engine.Progress) -> dict[str, object]:
    return {
        "stage": progress.stage,
        "num_stages": progress.num_stages,
        "iteration": progress.iteration,
        "iters_per_stage": progress.iters_per_stage,
        "percent": round(100.0 * progress.fraction_done, 1),
        "elapsed_s": round(progress.elapsed_s, 2),
        "eta_s": None if progress.eta_s is None else round(progress.eta_s, 1),
        "losses": {k: round(v, 5) for k, v in progress.losses.items()},
    }


class CancelCheck:
    """The engine's `should_stop`: re-reads the job's cancel flag at most every `interval_s`. Also stops when
    the attempt is no longer ours (a reaper re-queued the job and another worker claimed it)."""

    def __init__(self, ctx: WorkerContext, job: Job) -> None:
        self.ctx, self.job_id, self.attempt = ctx, job.id, job.attempts
        self.interval_s = ctx.settings.cancel_poll_interval_s
        self.last_check = time.monotonic()
        self.stop = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.stop or now - self.last_check < self.interval_s:
            return self.stop
        self.last_check = now
        try:
            with self.ctx.db.read() as session:
                query = select(Job.cancel_requested, Job.state, Job.attempts).where(Job.id == self.job_id)
                row = session.execute(query).first()
        except Exception as e:
            if not is_unavailable(e):
                raise
            return self.stop  # the database is away: keep training, ask again at the next check
        self.stop = (
            row is None
            or bool(row.cancel_requested)
            or row.state != JobState.RUNNING
            or row.attempts != self.attempt
        )
        return self.stop


def progress_reporter(
    ctx: WorkerContext, job: Job, plan: estimates.TrainingPlan | None = None
) -> ProgressReporter:
    return ProgressReporter(ctx, job, ctx.settings.progress_interval_s, plan)


def measured_speeds(ctx: WorkerContext) -> estimates.Speeds | None:
    """The pace this device kind measured so far (None when the database is away: no plan, the engine's
    own ETA)."""

    def read() -> estimates.Speeds:
        with ctx.db.read() as session:
            return estimates.load_speeds(session, ctx.device_kind)

    try:
        return read()
    except Exception as e:
        if not is_unavailable(e):
            raise
        return None
