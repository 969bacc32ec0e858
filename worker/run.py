"""Run one job: claim it, load its rows, keep a heartbeat while its kind's runner works, and report.

A job id goes in; the job's row says what to do. Claiming is a conditional UPDATE, so a second delivery of the
same task (Celery redelivers long tasks after the visibility timeout) returns quietly. Any error of the work
itself fails the job with its reason; the task then ends normally (no Celery retry).
"""

from __future__ import annotations

import logging
import time

from core import jobs
from core.models import Job, JobKind, JobState, Model
from core.storage import model_prefix
from worker import metrics, outcomes
from worker.kinds import RUNNERS
from worker.runtime import Heartbeat, JobGone, WorkerContext

log = logging.getLogger(__name__)


def run_job(ctx: WorkerContext, job_id: str) -> JobState | None:
    """Claim and run one job. Returns its final state, or None when there was nothing to do."""
    with ctx.db.transaction() as session:
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


def _load(ctx: WorkerContext, job_id: str) -> tuple[Job, Model]:
    with ctx.db.read() as session:
        job = session.get(Job, job_id)
        model = session.get(Model, job.model_id) if job else None
        if job is None or model is None:
            raise JobGone(job_id)
        session.expunge_all()
    return job, model


def _run_guarded(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    runner = RUNNERS.get(JobKind(job.kind)) if job.kind in set(JobKind) else None
    if runner is None:
        return outcomes.fail(ctx, job, f"{job.kind} jobs are not supported by this worker yet")
    try:
        return runner(ctx, job, model)
    except JobGone:
        raise
    except Exception as e:
        log.exception("job crashed", extra={"job_id": job.id, "model_id": model.id})
        return outcomes.fail(ctx, job, f"{type(e).__name__}: {e}")
