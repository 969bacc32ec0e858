"""The job state machine: queued -> running -> succeeded | failed | canceled.

Every transition is ONE conditional UPDATE (`... WHERE id = :id AND state = :expected`): a redelivered task,
a cancel racing a finish, or two workers claiming one job all resolve to exactly one winner (rowcount 1).
Functions here never commit: the caller decides the transaction, so a final state, its event and its
webhook outbox rows commit together.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from core import fair_share, notify, webhooks
from core.ids import new_id
from core.models import Job, JobEvent, JobEventType, JobKind, JobState, Model, utcnow
from core.vocabulary import Lane, as_lane, lane_of

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


def add_event(
    session: Session, job_id: str, type_: JobEventType, message: str = "", data: dict[str, Any] | None = None
) -> None:
    session.add(JobEvent(job_id=job_id, type=type_.value, message=message, data=data))
    notify.job_changed(session, job_id)  # waiters (`Prefer: wait`, event streams) wake at the commit


def lane_of_job(job: Job) -> Lane:
    """The lane this job waits and runs in: decided by `core.vocabulary.lane_of` when it was created and stored
    on the row, where fair share (`core.fair_share`) and the embedded runner's poll read it."""
    return as_lane(job.lane)


def new_job_id() -> str:
    return new_id("job")


def create_job(
    session: Session,
    model: Model,
    kind: JobKind,
    params: dict[str, Any] | None = None,
    job_id: str | None = None,
) -> Job:
    """Insert a queued job (flushed, not committed). Its task is sent after the commit by the unit of work,
    with the fair-share priority computed here (`core.fair_share`)."""
    lane = lane_of(kind.value, params)
    job = Job(
        id=job_id or new_job_id(),
        owner_id=model.owner_id,
        model_id=model.id,
        kind=kind.value,
        state=JobState.QUEUED.value,
        params=params or {},
        cancel_requested=False,
        keep_trained_stages=False,
        attempts=0,
        stages_done=0,
        created_at=utcnow(),
        lane=lane,
        priority=fair_share.priority_for(session, model.owner_id, lane),
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, JobEventType.QUEUED, f"{kind.value} job queued")
    return job


def _conditional_update(
    session: Session, job_id: str, expected: JobState, attempt: int | None = None, **values: Any
) -> bool:
    """`attempt` fences a worker's writes: after a reaper re-queued the job and another worker claimed it
    (attempts + 1), a late write from the earlier attempt matches no row."""
    conditions = [Job.id == job_id, Job.state == expected.value]
    if attempt is not None:
        conditions.append(Job.attempts == attempt)
    result = session.execute(
        update(Job).where(*conditions).values(**values),
        execution_options={"synchronize_session": False},
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def claim(session: Session, job_id: str, worker: str, max_attempts: int) -> bool:
    """queued -> running. False when the job is gone, claimed by someone else, canceled or out of attempts."""
    now = utcnow()
    won = _conditional_update(
        session,
        job_id,
        JobState.QUEUED,
        state=JobState.RUNNING.value,
        started_at=now,
        heartbeat_at=now,
        worker=worker,
        attempts=Job.attempts + 1,
    )
    if not won:
        return False
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    if counted_attempts(job) > max_attempts:
        fail(session, job, f"gave up after {max_attempts} attempts")
        return False
    add_event(session, job_id, JobEventType.STARTED, f"attempt {job.attempts} on {worker}")
    return True


def counted_attempts(job: Job) -> int:
    """Claims that count against `max_attempts`: those that gave the job back because a dependency was
    unavailable do not (the job did nothing wrong)."""
    return job.attempts - (job.given_back or 0)


def next_queued_job_id(session: Session, lane: Lane | None = None) -> str | None:
    """The queued job to start next, of one lane when given, in the fair-share order a broker would serve it
    (the embedded worker's poll); claiming it can still lose a race."""
    query = select(Job.id).where(Job.state == JobState.QUEUED.value)
    if lane is not None:
        query = query.where(Job.lane == lane)
    job_id = session.scalar(query.order_by(*fair_share.claim_order()).limit(1))
    return None if job_id is None else str(job_id)


def record_progress(
    session: Session, job_id: str, progress: dict[str, Any], attempt: int | None = None
) -> bool:
    """Progress doubles as the heartbeat. False when the job is no longer running (or no longer ours)."""
    won = _conditional_update(
        session, job_id, JobState.RUNNING, attempt, progress=progress, heartbeat_at=utcnow()
    )
    if won:
        notify.job_changed(session, job_id)  # an event stream shows the new progress
    return won


def heartbeat(session: Session, job_id: str, attempt: int) -> bool:
    """The worker is alive and still owns this attempt. False: the job ended, was re-queued or re-claimed."""
    return _conditional_update(session, job_id, JobState.RUNNING, attempt, heartbeat_at=utcnow())


def record_stage_done(
    session: Session,
    job_id: str,
    stages_done: int,
    attempt: int | None = None,
    preview: dict[str, int] | None = None,
) -> bool:
    """`preview`: the width and height of the stage's stored preview image (`core.storage.stage_preview_key`),
    announced in the event so a client can show what the model draws so far. A finished stage is progress: an
    outage that gave the job back before is over (`unavailable_since`)."""
    won = _conditional_update(
        session,
        job_id,
        JobState.RUNNING,
        attempt,
        stages_done=stages_done,
        heartbeat_at=utcnow(),
        unavailable_since=None,
    )
    if won:
        data: dict[str, Any] = {"stages_done": stages_done, "stage": stages_done - 1}
        if preview is not None:
            data["preview"] = preview
        add_event(session, job_id, JobEventType.STAGE_DONE, f"stage {stages_done - 1} finished", data)
    return won


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def _finish(
    session: Session,
    job: Job,
    expected: JobState,
    state: JobState,
    message: str,
    error: str | None = None,
    attempt: int | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    now = utcnow()
    values: dict[str, Any] = {"state": state.value, "finished_at": now, "error": error}
    if result is not None:
        values["result"] = result
    won = _conditional_update(session, job.id, expected, attempt, **values)
    if not won:
        return False
    # Reload in this session (the caller's object may come from another, e.g. the worker's).
    fresh = session.get_one(Job, job.id, populate_existing=True)
    data = {"error": error} if error else None
    add_event(session, job.id, JobEventType(state.value), message, data)
    webhooks.enqueue_job_event(session, fresh)
    return True


def succeed(
    session: Session,
    job: Job,
    attempt: int | None = None,
    result: dict[str, Any] | None = None,
    message: str | None = None,
) -> bool:
    """running -> succeeded; `result` describes what the job produced besides samples (its files)."""
    return _finish(
        session,
        job,
        JobState.RUNNING,
        JobState.SUCCEEDED,
        message or f"{job.kind} job succeeded",
        attempt=attempt,
        result=result,
    )


def fail(
    session: Session,
    job: Job,
    reason: str,
    expected: JobState = JobState.RUNNING,
    attempt: int | None = None,
) -> bool:
    reason = reason[:MAX_ERROR_CHARS]
    won = _finish(session, job, expected, JobState.FAILED, reason, error=reason, attempt=attempt)
    if won:
        log.warning("job failed", extra={"job_id": job.id, "model_id": job.model_id, "reason": reason})
    return won


def mark_canceled(session: Session, job: Job, attempt: int | None = None) -> bool:
    """running -> canceled, by the worker once training stopped on the cancel flag."""
    return _finish(
        session, job, JobState.RUNNING, JobState.CANCELED, "canceled while running", attempt=attempt
    )


def give_back(session: Session, job: Job, reason: str, outage_limit_s: float) -> str | None:
    """running -> queued by the attempt itself, because a dependency stayed unavailable (`reason` says
    which): not the job's fault, so the attempt is not counted (`given_back` + 1) and the next claim resumes
    from the last stage snapshot. Once the outage has lasted `outage_limit_s` since the first give-back, the job
    fails with that reason instead. Returns "queued", "failed", or None when this attempt no longer owns it."""
    fresh = session.get(Job, job.id, populate_existing=True)
    if fresh is None or fresh.state != JobState.RUNNING or fresh.attempts != job.attempts:
        return None
    now = utcnow()
    since = fresh.unavailable_since or now
    if (now - since).total_seconds() >= outage_limit_s:
        why = f"{reason}; infrastructure unavailable for more than {outage_limit_s:g} s, gave up"
        return "failed" if fail(session, fresh, why, attempt=job.attempts) else None
    won = _conditional_update(
        session,
        job.id,
        JobState.RUNNING,
        job.attempts,
        state=JobState.QUEUED.value,
        worker=None,
        heartbeat_at=now,  # queued since now: the stranded-message check waits its grace from here
        given_back=Job.given_back + 1,
        unavailable_since=since,
    )
    if not won:
        return None
    add_event(
        session,
        job.id,
        JobEventType.GIVEN_BACK,
        f"{reason}; back to queued, attempt {job.attempts} not counted",
        {"attempt": job.attempts, "stages_done": fresh.stages_done},
    )
    log.warning("job given back", extra={"job_id": job.id, "attempt": job.attempts, "reason": reason})
    return "queued"


def request_cancel(session: Session, job: Job, keep_trained_stages: bool = False) -> bool:
    """A queued job is canceled at once; a running one gets the flag its training loop polls.
    `keep_trained_stages` (a running training with a finished stage): the worker stops and the model succeeds
    with the stages trained so far instead of being discarded; the caller checked there is one. It is
    only ever flags a running job: a queued one (say, re-queued by the reaper since the caller looked) has no
    worker holding its stages, and discarding it is not what was asked. Returns False when nothing changed."""
    if not keep_trained_stages and _finish(
        session, job, JobState.QUEUED, JobState.CANCELED, "canceled before it started"
    ):
        return True
    values: dict[str, Any] = {"cancel_requested": True}
    if keep_trained_stages:
        values["keep_trained_stages"] = True
    flagged = _conditional_update(session, job.id, JobState.RUNNING, **values)
    if flagged:
        message = (
            "cancel requested, keeping the stages trained so far; the worker stops within seconds"
            if keep_trained_stages
            else "cancel requested; the worker stops within seconds"
        )
        add_event(
            session,
            job.id,
            JobEventType.CANCEL_REQUESTED,
            message,
            {"keep_trained_stages": True} if keep_trained_stages else None,
        )
        session.get_one(Job, job.id, populate_existing=True)
    return flagged


def database_started_at(session: Session) -> dt.datetime | None:
    """When the database server last started (Postgres); None where unknown. Heartbeats cannot land while it
    is down, so a restart makes every running job look stale although its worker is alive and retrying."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    started = session.scalar(select(func.pg_postmaster_start_time()))
    return started if isinstance(started, dt.datetime) else None


def stale_running_jobs(session: Session, older_than: dt.timedelta, limit: int = 100) -> list[Job]:
    """Running jobs whose heartbeat stopped (a dead worker)."""
    cutoff = utcnow() - older_than
    query = (
        select(Job)
        .where(Job.state == JobState.RUNNING.value, Job.heartbeat_at < cutoff)
        .order_by(Job.heartbeat_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def reap(session: Session, job: Job, older_than: dt.timedelta, max_attempts: int) -> str | None:
    """One stale running job: back to `queued` (a fresh claim resumes from its last stage snapshot), or
    `failed` with the reason once it used its attempts. Returns "requeued", "failed" or None when the job
    moved on meanwhile (a heartbeat arrived, it ended): the stale heartbeat is part of the condition."""
    cutoff = utcnow() - older_than
    reason = f"the worker stopped answering (no heartbeat for {older_than.total_seconds():g} s)"
    still_stale = (
        Job.id == job.id,
        Job.state == JobState.RUNNING.value,
        Job.attempts == job.attempts,
        Job.heartbeat_at < cutoff,
    )

    def won(values: dict[str, object]) -> bool:
        result = session.execute(
            update(Job).where(*still_stale).values(**values),
            execution_options={"synchronize_session": False},
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    if counted_attempts(job) >= max_attempts:
        if not won({"heartbeat_at": utcnow()}):  # take the job first, so only one reaper fails it
            return None
        failed = fail(session, job, f"{reason} on attempt {job.attempts} of {max_attempts}; gave up")
        return "failed" if failed else None
    if not won({"state": JobState.QUEUED.value, "worker": None}):
        return None
    add_event(
        session,
        job.id,
        JobEventType.REQUEUED,
        f"{reason}; re-queued after attempt {job.attempts} of {max_attempts}",
        {"attempt": job.attempts, "worker": job.worker, "stages_done": job.stages_done},
    )
    log.warning(
        "stale job re-queued",
        extra={"job_id": job.id, "model_id": job.model_id, "attempt": job.attempts, "worker": job.worker},
    )
    return "requeued"


def unqueue_unsent(session: Session, job_id: str) -> bool:
    """Undo a reaper's re-queue whose task could not be sent: running again, heartbeat still stale."""
    return _conditional_update(session, job_id, JobState.QUEUED, state=JobState.RUNNING.value)


def queued_jobs(
    session: Session, older_than: dt.timedelta, limit: int = 1000
) -> list[tuple[str, str, Lane, int]]:
    """(id, kind, lane, priority) of jobs queued since before `older_than` ago (last claim or creation),
    oldest first."""
    cutoff = utcnow() - older_than
    since = func.coalesce(Job.heartbeat_at, Job.created_at)
    query = (
        select(Job.id, Job.kind, Job.lane, Job.priority)
        .where(Job.state == JobState.QUEUED.value, since < cutoff)
        .order_by(Job.created_at)
        .limit(limit)
    )
    return [(row.id, row.kind, as_lane(row.lane), row.priority or 0) for row in session.execute(query)]
