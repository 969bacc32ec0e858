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
import re
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from core import estimates, jobs
from core.db import Database
from core.models import FINAL_STATES, IdempotencyRecord, Job, JobKind, Model, Sample, utcnow
from core.queue import JobQueue, QueueUnavailable
from core.settings import Settings
from core.storage import Storage
from core.unit_of_work import UnitOfWork
from core.vocabulary import Lane

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
    to_send: list[tuple[str, JobKind, Lane, int]] = []
    with db.read() as session:
        stale = [(job.id, job) for job in jobs.stale_running_jobs(session, timeout)]
        started = jobs.database_started_at(session) if older_than_s is None else None
        session.expunge_all()
    if stale and started is not None and started > utcnow() - timeout:
        # The database came back less than a heartbeat timeout ago: the heartbeats it missed while down
        # prove nothing about the workers (they retry and write again within seconds). Wait.
        log.info("database restarted recently; stale heartbeats not reaped yet", extra={"count": len(stale)})
        stale = []
    for job_id, job in stale:
        # One short transaction per job: its state change, event and webhook outbox row commit together;
        # the unit of work sends the webhook of a job that failed for good right after the commit.
        with UnitOfWork(db, queue) as uow:
            outcome = jobs.reap(uow.session, job, timeout, settings.max_attempts)
            uow.commit()
        if outcome == "requeued":
            reaped.requeued.append(job_id)
            to_send.append((job_id, JobKind(job.kind), jobs.lane_of_job(job), job.priority or 0))
        elif outcome == "failed":
            reaped.failed.append(job_id)
    for job_id, kind, lane, priority in to_send:
        try:
            queue.send_job(job_id, kind, lane, priority=priority)
        except QueueUnavailable:
            # Queued with no task would wait forever: put it back as stale-running; the next pass retries.
            with db.transaction() as session:
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


def resend_stranded(
    db: Database, queue: JobQueue, settings: Settings, grace_s: float | None = None
) -> list[str]:
    """Queued jobs whose task message died with a worker (reserved, then SIGKILL before the claim) or with
    the broker (a Redis restarted empty) are sent again. Only where the queue can tell which messages are
    alive (Redis); a duplicate is harmless anyway: claiming is a conditional UPDATE. `grace_s` (default: the
    heartbeat timeout) spares jobs queued so recently that their own send may still be on its way."""
    pending_of = getattr(queue, "pending_job_ids", None)
    if pending_of is None:
        return []
    grace = dt.timedelta(seconds=settings.heartbeat_timeout_s if grace_s is None else grace_s)
    with db.read() as session:
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
    for job_id, kind, lane, priority in candidates:
        if job_id in pending:
            continue
        try:
            queue.send_job(job_id, JobKind(kind), lane, priority=priority)
        except QueueUnavailable:
            break
        resent.append(job_id)
    if resent:
        log.warning("re-sent jobs whose task message was lost", extra={"count": len(resent)})
    return resent


RECONNECT_GRACE_S = 1.0


def recover_after_connect(db: Database, queue: JobQueue, settings: Settings) -> Reaped:
    """A worker (re)connected to the broker: at start, or after the broker was lost (a Redis restarted empty
    lost every waiting message). Reap, then re-send every queued job without a live message at once, instead
    of waiting for the periodic pass and its heartbeat-long grace."""
    reaped = reap_stale_jobs(db, queue, settings)
    more = resend_stranded(db, queue, settings, grace_s=RECONNECT_GRACE_S)
    reaped.resent = sorted(set(reaped.resent) | set(more))
    if more:
        log.warning("re-sent jobs after a broker connection", extra={"count": len(more)})
    return reaped


# --- data lifecycle -----------------------------------------------------------------------------------------


@dataclass
class Cleaned:
    orphan_objects: int = 0
    expired_samples: int = 0
    expired_idempotency_records: int = 0
    pruned_speeds: int = 0


def _owner_id_of(key: str) -> tuple[str, str] | None:
    """('models' | 'jobs', id) of a key built by core.storage, or None for anything else."""
    parts = key.split("/", 2)
    if len(parts) < 2 or parts[0] not in ("models", "jobs"):
        return None
    return parts[0], parts[1]


def _sample_id_of(key: str) -> str | None:
    """The sample id of `models/{model_id}/samples/{sample_id}.png`, else None."""
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == "models" and parts[2] == "samples" and parts[3].endswith(".png"):
        return parts[3].removesuffix(".png")
    return None


def _job_output_of(key: str) -> tuple[str, int] | None:
    """(job id, attempt) of a per-attempt output `models/{model_id}/jobs/{job_id}/a{n}/{name}`, else None."""
    parts = key.split("/")
    if len(parts) == 6 and parts[0] == "models" and parts[2] == "jobs" and re.fullmatch(r"a\d+", parts[4]):
        return parts[3], int(parts[4][1:])
    return None


def _remove_outputs_of_lost_attempts(
    db: Database, storage: Storage, keys_by_attempt: dict[tuple[str, int], list[str]]
) -> int:
    """Outputs of an attempt that is not the one its ended job points at (`result.attempt`): the attempt lost
    its job, or its success commit, and could not delete them itself (storage was away too)."""
    job_ids = sorted({job_id for job_id, _ in keys_by_attempt})
    removed = 0
    for start in range(0, len(job_ids), 500):
        batch = job_ids[start : start + 500]
        with db.read() as session:
            ended = {
                row.id: (row.result or {}).get("attempt")
                for row in session.execute(
                    select(Job.id, Job.result).where(Job.id.in_(batch), Job.state.in_(FINAL_STATES))
                )
            }
        for (job_id, attempt), keys in keys_by_attempt.items():
            if job_id in ended and ended[job_id] != attempt:
                for key in keys:
                    storage.delete(key)
                    removed += 1
    return removed


def _remove_samples_without_rows(db: Database, storage: Storage, keys_by_id: dict[str, str]) -> int:
    ids = list(keys_by_id)
    removed = 0
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        with db.read() as session:
            alive = set(session.scalars(select(Sample.id).where(Sample.id.in_(batch))))
        for orphan in set(batch) - alive:
            storage.delete(keys_by_id[orphan])
            removed += 1
    return removed


def remove_orphaned_objects(db: Database, storage: Storage, grace: dt.timedelta) -> int:
    """Objects under models/{id}/ or jobs/{id}/ whose row is gone (a crash between writing objects and
    committing the row, a delete that failed half-way). Only prefixes whose newest object is older than
    `grace` go: an upload in flight writes its objects before its row. Also sample images of a live model
    with no sample row: an attempt stored them and lost its success commit (the database went away)."""
    newest: dict[tuple[str, str], dt.datetime] = {}
    cutoff = utcnow() - grace
    old_samples: dict[str, str] = {}  # sample id -> key
    old_outputs: dict[tuple[str, int], list[str]] = {}  # (job id, attempt) -> keys
    for top in ("models/", "jobs/"):
        for key, modified in storage.list_objects(top):
            owner = _owner_id_of(key)
            if owner is not None:
                newest[owner] = max(modified, newest.get(owner, modified))
            if modified >= cutoff:
                continue
            sample_id, output = _sample_id_of(key), _job_output_of(key)
            if sample_id is not None:
                old_samples[sample_id] = key
            elif output is not None:
                old_outputs.setdefault(output, []).append(key)
    candidates = [owner for owner, modified in newest.items() if modified < cutoff]
    removed = 0
    for table, column in (("models", Model.id), ("jobs", Job.id)):
        ids = [i for kind, i in candidates if kind == table]
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            with db.read() as session:
                alive = set(session.scalars(select(column).where(column.in_(batch))))
            for orphan in set(batch) - alive:
                try:
                    removed += storage.delete_prefix(f"{table}/{orphan}/")
                except ValueError:  # not one of our ids: leave it to a human
                    log.warning("unexpected object prefix", extra={"prefix": f"{table}/{orphan}/"})
    removed += _remove_samples_without_rows(db, storage, old_samples)
    removed += _remove_outputs_of_lost_attempts(db, storage, old_outputs)
    if removed:
        log.warning("orphaned objects removed", extra={"count": removed})
    return removed


def remove_expired_samples(db: Database, storage: Storage, retention: dt.timedelta, limit: int = 1000) -> int:
    """Drawn samples (not a model's training previews) older than the retention: objects, then rows."""
    cutoff = utcnow() - retention
    with db.read() as session:
        rows = list(
            session.execute(
                select(Sample.id, Sample.key)
                .where(Sample.is_preview.is_(False), Sample.created_at < cutoff)
                .limit(limit)
            )
        )
    for row in rows:
        storage.delete(row.key)
    if rows:
        with db.transaction() as session:
            session.execute(delete(Sample).where(Sample.id.in_([r.id for r in rows])))
        log.info("expired samples removed", extra={"count": len(rows)})
    return len(rows)


def remove_expired_idempotency_records(db: Database, ttl: dt.timedelta) -> int:
    with db.transaction() as session:
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - ttl),
            execution_options={"synchronize_session": False},
        )
        return int(getattr(result, "rowcount", 0) or 0)


def cleanup(db: Database, storage: Storage, settings: Settings) -> Cleaned:
    """The periodic data-lifecycle pass (Celery beat every `cleanup_interval_s`, or the embedded runner)."""
    cleaned = Cleaned()
    cleaned.orphan_objects = remove_orphaned_objects(
        db, storage, dt.timedelta(seconds=settings.orphan_grace_s)
    )
    if settings.sample_retention_s > 0:
        retention = dt.timedelta(seconds=settings.sample_retention_s)
        cleaned.expired_samples = remove_expired_samples(db, storage, retention)
    ttl = dt.timedelta(seconds=settings.idempotency_ttl_s)
    cleaned.expired_idempotency_records = remove_expired_idempotency_records(db, ttl)
    with db.transaction() as session:
        cleaned.pruned_speeds = estimates.prune_speeds(session)
    return cleaned
