"""Thin Celery tasks: take an id, hand it to `run_job`. State lives in the database, not in results.

One task per job kind, each named by `core.queue.TASK_FOR_KIND` (so the API sends by name); all do the same:
the job's row says what to run.
"""

from __future__ import annotations

import logging

from celery.exceptions import Reject

from core import maintenance, webhooks
from core.infra import StillUnavailable
from core.queue import (
    TASK_CLEANUP,
    TASK_DELIVER_WEBHOOK,
    TASK_DISPATCH_WEBHOOKS,
    TASK_FOR_KIND,
    TASK_REAP_STALE_JOBS,
)
from worker.celery_app import app, settings
from worker.run import run_job
from worker.runtime import WorkerContext, build_context

log = logging.getLogger(__name__)
_context: WorkerContext | None = None


def context() -> WorkerContext:
    """Built on first use inside the process that runs tasks (after the fork), then reused."""
    global _context
    if _context is None:
        _context = build_context(settings, settings.worker_lane)
    return _context


def run_job_task(job_id: str) -> None:
    try:
        run_job(context(), job_id)
    except StillUnavailable as e:
        # The database stayed away while claiming: the job is still queued. Acknowledging would drop its
        # only message; put it back instead (a worker retries it; the reconnect pass covers a lost broker).
        log.warning("job not claimed; dependency unavailable, message put back", extra={"job_id": job_id})
        raise Reject(str(e), requeue=True) from e


JOB_TASKS = {kind: app.task(name=name)(run_job_task) for kind, name in TASK_FOR_KIND.items()}


@app.task(name=TASK_DELIVER_WEBHOOK, time_limit=120, soft_time_limit=100)
def deliver_webhook(delivery_id: str) -> None:
    ctx = context()
    webhooks.deliver(ctx.db, ctx.settings, delivery_id)


@app.task(name=TASK_DISPATCH_WEBHOOKS, time_limit=60, soft_time_limit=50)
def dispatch_webhooks() -> None:
    ctx = context()
    with ctx.db.read() as session:
        due = webhooks.due_delivery_ids(session)
    for delivery_id in due:
        ctx.queue.send_webhook(delivery_id)
    if due:
        log.info("due webhooks dispatched", extra={"count": len(due)})


@app.task(name=TASK_REAP_STALE_JOBS, time_limit=60, soft_time_limit=50)
def reap_stale_jobs() -> dict[str, int]:
    reaped = maintenance.reap_stale_jobs(context().db, context().queue, context().settings)
    return {"requeued": len(reaped.requeued), "failed": len(reaped.failed)}


@app.task(name=TASK_CLEANUP, time_limit=1800, soft_time_limit=1700)
def cleanup() -> dict[str, int]:
    ctx = context()
    cleaned = maintenance.cleanup(ctx.db, ctx.storage, ctx.settings)
    return dict(vars(cleaned))
