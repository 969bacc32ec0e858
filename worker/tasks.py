"""Thin Celery tasks: take an id, hand it to `run_job`. State lives in the database, not in results.

One task per job kind, each named by `core.queue.TASK_FOR_KIND` (so the API sends by name); all do the same:
the job's row says what to run.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

from core import maintenance, webhooks
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
        _context = build_context(settings)
    return _context


def run_job_task(job_id: str) -> None:
    run_job(context(), job_id)


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


@worker_ready.connect
def _reap_at_start(**_kwargs: Any) -> None:
    """A worker that starts (e.g. after its node died) reaps at once instead of waiting for beat. Runs in the
    main process: a throwaway context, so no connection is inherited by the pool's children."""
    ctx = build_context(settings)
    try:
        maintenance.reap_stale_jobs(ctx.db, ctx.queue, settings)
    except Exception:
        log.exception("reaper at start failed")
    finally:
        ctx.db.dispose()
