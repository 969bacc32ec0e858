"""Run one job: claim it, load its rows, keep a heartbeat while its kind's runner works, and report.

A job id goes in; the job's row says what to do. Claiming is a conditional UPDATE, so a second delivery of the
same task (Celery redelivers long tasks after the visibility timeout) returns quietly. Any error of the work
itself fails the job with its reason; the task then ends normally (no Celery retry).

An unavailable database, broker or storage is not the job's error: each touch retries for `infra_retry_s`
(`ctx.retry`, the worker's retrying storage); past that the job is given back to `queued` without spending its
attempt. A claim that cannot reach the database raises `StillUnavailable`: the task must not be acknowledged
(worker.tasks puts its message back).
"""

from __future__ import annotations

import logging
import time

from core import jobs
from core.infra import StillUnavailable, is_unavailable
from core.models import Job, JobKind, JobState, Model
from core.storage import model_prefix
from worker import metrics, outcomes
from worker.kinds import RUNNERS
from worker.runtime import Heartbeat, JobGone, WorkerContext

log = logging.getLogger(__name__)


def run_job(ctx: WorkerContext, job_id: str) -> JobState | None:
    """Claim and run one job. Returns its final state, or None when there was nothing to do."""
    claimed = _claim(ctx, job_id)
    if claimed is None:
        log.info("job not claimed (gone, taken or canceled)", extra={"job_id": job_id})
        return None
    job = claimed
    try:
        model = ctx.retry(lambda: _load_model(ctx, job), "load the job's model")
    except JobGone:
        if ctx.models is not None:
            ctx.models.forget(job.model_id)
        return None
    except StillUnavailable as e:
        return outcomes.give_back(ctx, claimed, e)
    extra = {"job_id": job.id, "model_id": model.id, "kind": job.kind}
    log.info("job started", extra={**extra, "attempt": job.attempts, "device": ctx.device})
    started = time.monotonic()
    try:
        with Heartbeat(ctx, job.id, job.attempts, ctx.settings.heartbeat_interval_s):
            state = _run_guarded(ctx, job, model)
    except JobGone:
        if ctx.models is not None:
            ctx.models.forget(model.id)
        ctx.storage.delete_prefix(model_prefix(model.id))
        log.info("job's model was deleted while it ran; output discarded", extra=extra)
        return None
    seconds = time.monotonic() - started
    log.info("job ended", extra={**extra, "state": state, "seconds": round(seconds, 2)})
    wait_s = (job.started_at - job.created_at).total_seconds() if job.started_at and job.created_at else None
    metrics.observe_job(job.kind, state, seconds, wait_s, ctx.device, ctx.lane)
    return state


def _claim(ctx: WorkerContext, job_id: str) -> Job | None:
    """queued -> running, retried while the database is unavailable: the claimed row, or None. A retry that
    finds the job running under this worker's own name had its earlier commit land unanswered: ours."""
    tries = 0

    def try_claim() -> Job | None:
        nonlocal tries
        tries += 1
        with ctx.db.transaction() as session:
            won = jobs.claim(session, job_id, ctx.name, ctx.settings.max_attempts)
            job = session.get(Job, job_id)
            if job is None or not (
                won or (tries > 1 and job.state == JobState.RUNNING and job.worker == ctx.name)
            ):
                return None
            session.expunge(job)
            return job

    return ctx.retry(try_claim, "claim the job")


def _load_model(ctx: WorkerContext, job: Job) -> Model:
    with ctx.db.read() as session:
        model = session.get(Model, job.model_id)
        if model is None:  # deleted between the claim and now
            raise JobGone(job.id)
        session.expunge(model)
    return model


def _run_guarded(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    runner = RUNNERS.get(JobKind(job.kind)) if job.kind in set(JobKind) else None
    if runner is None:
        return outcomes.fail(ctx, job, f"{job.kind} jobs are not supported by this worker yet")
    try:
        return runner(ctx, job, model)
    except JobGone:
        raise
    except Exception as e:
        if is_unavailable(e):  # infrastructure, not the job: back to the queue, the attempt not counted
            log.warning(
                "dependency unavailable; giving the job back", extra={"job_id": job.id, "error": str(e)}
            )
            return outcomes.give_back(ctx, job, e)
        log.exception("job crashed", extra={"job_id": job.id, "model_id": model.id})
        return outcomes.fail(ctx, job, f"{type(e).__name__}: {e}")
