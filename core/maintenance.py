"""Periodic housekeeping shared by Celery beat tasks and the embedded runner: the crash reaper, and the
cleanup of orphaned objects and expired records.

The reaper: a running job writes a heartbeat every `heartbeat_interval_s`; one whose heartbeat is older than
`heartbeat_timeout_s` lost its worker (kill -9, OOM, a lost node). It goes back to `queued` and its task is sent
again (the next claim resumes from the last stored stage snapshot), or, after `max_attempts` claims, it fails
with the reason. Each step is a conditional UPDATE, so two reapers, or a reaper racing a late heartbeat, agree.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import suppress
from dataclasses import dataclass, field

from core import jobs, webhooks
from core.db import Database
from core.models import JobKind
from core.queue import JobQueue, QueueUnavailable
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def reap_stale_jobs(
    db: Database, queue: JobQueue, settings: Settings, older_than_s: float | None = None
) -> Reaped:
    """Re-queue (and re-send) or fail every running job whose heartbeat stopped. `older_than_s=0` treats
    every running job as abandoned (the embedded runner at start: it is the only worker)."""
    timeout = dt.timedelta(seconds=settings.heartbeat_timeout_s if older_than_s is None else older_than_s)
    reaped = Reaped()
    to_send: list[tuple[str, JobKind]] = []
    with db.sessions() as session:
        stale = [(job.id, job) for job in jobs.stale_running_jobs(session, timeout)]
        session.expunge_all()
    for job_id, job in stale:
        # One short transaction per job: its state change, event and webhook outbox row commit together.
        with db.session() as session:
            outcome = jobs.reap(session, job, timeout, settings.max_attempts)
            new_deliveries = list(session.info.pop(webhooks.NEW_DELIVERIES, []))
        if outcome == "requeued":
            reaped.requeued.append(job_id)
            to_send.append((job_id, JobKind(job.kind)))
        elif outcome == "failed":
            reaped.failed.append(job_id)
            for delivery_id in new_deliveries:
                with suppress(QueueUnavailable):  # the webhook sweep sends it later
                    queue.send_webhook(delivery_id)
    for job_id, kind in to_send:
        try:
            queue.send_job(job_id, kind)
        except QueueUnavailable:
            # Queued with no task would wait forever: put it back as stale-running; the next pass retries.
            with db.session() as session:
                jobs.unqueue_unsent(session, job_id)
            log.error("could not re-send a re-queued job; retried next pass", extra={"job_id": job_id})
    reaped.resent = resend_stranded(db, queue, settings)
    if reaped.requeued or reaped.failed or reaped.resent:
        log.warning(
            "reaper pass",
            extra={
                "requeued": len(reaped.requeued),
                "failed": len(reaped.failed),
                "resent": len(reaped.resent),
            },
        )
    return reaped


def resend_stranded(db: Database, queue: JobQueue, settings: Settings) -> list[str]:
    """Queued jobs whose task message died with a worker (reserved, then SIGKILL before the claim) are sent
    again. Only where the queue can tell which messages are alive (Redis); a duplicate is harmless anyway:
    claiming is a conditional UPDATE."""
    pending_of = getattr(queue, "pending_job_ids", None)
    if pending_of is None:
        return []
    grace = dt.timedelta(seconds=settings.heartbeat_timeout_s)
    with db.sessions() as session:
        # Old enough that the API's send-after-commit (or the reaper's own re-send) has surely happened.
        candidates = jobs.queued_jobs(session, older_than=grace)
    if not candidates:
        return []
    try:
        pending = pending_of(settings.heartbeat_timeout_s)
    except Exception:
        log.warning("could not inspect the broker for stranded jobs", exc_info=True)
        return []
    if pending is None:
        return []
    resent = []
    for job_id, kind in candidates:
        if job_id in pending:
            continue
        try:
            queue.send_job(job_id, JobKind(kind))
        except QueueUnavailable:
            break
        resent.append(job_id)
    if resent:
        log.warning("re-sent jobs whose task message was lost", extra={"count": len(resent)})
    return resent
