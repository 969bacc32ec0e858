"""How an attempt ends: it commits its result, or fails, or stops canceled. Each is one fenced transaction.

The rule for a result: objects first, then the fenced `succeed` (it matches only while this attempt still owns
the job). An attempt that lost meanwhile (canceled, failed by a reaper, or re-queued and claimed by another
attempt) rolls its rows back and deletes what it alone owns: objects under names no other attempt can write
(new sample ids, per-attempt job files). It never deletes what it shares with other attempts of the same job
(per-job or per-model keys such as the model's checkpoint): another attempt may have written them and may
point at them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from core import jobs
from core.infra import StillUnavailable, is_unavailable, retry_unavailable, unavailable_dependency
from core.models import Job, JobKind, JobState, Model
from core.queue import QueueUnavailable
from core.unit_of_work import EnqueueFailed
from worker.runtime import JobGone, WorkerContext, current_state

log = logging.getLogger(__name__)


def commit_result(
    ctx: WorkerContext,
    job: Job,
    *,
    owned_keys: Sequence[str],
    shared_keys: Sequence[str] = (),
    rows: Sequence[object] = (),
    result: dict[str, Any] | None = None,
    update_model: Callable[[Model], None] | None = None,
    follow_up: Callable[[Session, Model], None] | None = None,
    message: str | None = None,
) -> JobState:
    """Make a stored result visible: add `rows`, apply `update_model` to the model's row, store `result` on
    the job, and mark it succeeded, all in one transaction that commits only if this attempt still owns the
    job. Otherwise delete `owned_keys` (never `shared_keys`) and return the job's state as it is now.
    `follow_up(session, model)` runs in the same transaction once the job is this attempt's success (it may
    create the next job, whose task is sent after the commit); `message` is the success event's text.

    While the database is unavailable the transaction is tried again (`ctx.retry`). A try whose commit landed
    but whose answer was lost shows as "succeeded by this very attempt" on the next try. When the database
    stays away past the retry budget, the owned objects are deleted before the error goes up (run_job gives
    the job back): an attempt whose success commit was lost leaves nothing behind."""

    def try_commit() -> bool:
        with ctx.transaction() as uow:
            model = uow.session.get(Model, job.model_id)
            if model is None:
                raise JobGone(job.id)  # deleted with its model; run_job removes the model's objects
            if update_model is not None:
                update_model(model)
            uow.session.add_all(rows)
            if jobs.succeed(uow.session, job, attempt=job.attempts, result=result, message=message):
                if follow_up is not None:
                    follow_up(uow.session, model)
                try:
                    uow.commit()
                except EnqueueFailed as e:
                    # committed: a queued job without its task is re-sent by the reaper
                    log.warning(
                        "a follow-up job's task was not sent; the reaper sends it",
                        extra={"job_id": job.id, "follow_up_job_ids": e.job_ids},
                    )
                return True
        return _succeeded_by(ctx, job)

    try:
        won = ctx.retry(try_commit, "commit the result")
    except Exception as e:
        if is_unavailable(e):
            _discard(ctx, job, owned_keys, "the database stayed unavailable for the success commit")
        raise
    if won:
        return JobState.SUCCEEDED
    _discard(ctx, job, owned_keys, "attempt lost its job", kept=len(shared_keys))
    return current_state(ctx, job.id)


def _succeeded_by(ctx: WorkerContext, job: Job) -> bool:
    """True when the job is succeeded by THIS attempt (only the owning attempt can make it so)."""
    with ctx.db.read() as session:
        row = session.get(Job, job.id)
        return row is not None and row.state == JobState.SUCCEEDED and row.attempts == job.attempts


def _discard(ctx: WorkerContext, job: Job, owned_keys: Sequence[str], why: str, kept: int = 0) -> None:
    log.info(
        "discarding what this attempt stored",
        extra={"job_id": job.id, "attempt": job.attempts, "why": why, "owned": len(owned_keys), "kept": kept},
    )
    try:
        for key in owned_keys:
            ctx.storage.delete(key)
    except Exception:  # storage away too: the cleanup sweep removes sample objects without rows
        log.warning("could not delete an attempt's objects", extra={"job_id": job.id}, exc_info=True)


def fail(ctx: WorkerContext, job: Job, reason: str) -> JobState:
    won = _fenced(ctx, "fail the job", lambda session: jobs.fail(session, job, reason, attempt=job.attempts))
    return JobState.FAILED if won else current_state(ctx, job.id)


def finish_canceled(ctx: WorkerContext, job: Job) -> JobState:
    won = _fenced(
        ctx, "mark the job canceled", lambda session: jobs.mark_canceled(session, job, attempt=job.attempts)
    )
    return JobState.CANCELED if won else current_state(ctx, job.id)


def _fenced(ctx: WorkerContext, what: str, transition: Callable[[Session], bool]) -> bool:
    """One state change of this attempt in its own unit of work (its webhook sent after the commit), tried
    again while the database is unavailable. True when this attempt's write won."""

    def attempt() -> bool:
        with ctx.transaction() as uow:
            won = transition(uow.session)
            uow.commit()
        return won

    return ctx.retry(attempt, what)


def give_back(ctx: WorkerContext, job: Job, error: BaseException) -> JobState:
    """A dependency stayed unavailable past the retry budget: the job is not at fault. Back to `queued`
    without spending the attempt (`core.jobs.give_back`), and its task sent again; or failed once the outage
    outlasted `infra_outage_limit_s`. Writing that needs the database: while it is away this waits (and the
    worker takes no new task meanwhile), up to the outage limit."""
    dependency = unavailable_dependency(error) or "a dependency"
    cause = error.cause if isinstance(error, StillUnavailable) else error
    reason = f"the {dependency} was unavailable ({type(cause).__name__}: {cause})"[:500]
    limit_s = ctx.settings.infra_outage_limit_s

    def try_give_back() -> str | None:
        with ctx.transaction() as uow:
            outcome = jobs.give_back(uow.session, job, reason, limit_s)
            uow.commit()
        return outcome

    retry_unavailable(try_give_back, limit_s, "give the job back")
    state = current_state(ctx, job.id)
    if state == JobState.QUEUED:
        try:
            ctx.queue.send_job(job.id, JobKind(job.kind), jobs.lane_of_job(job), priority=job.priority or 0)
        except QueueUnavailable:  # queued without a message: re-sent when a worker reconnects to the broker
            log.warning("could not re-send a given-back job", extra={"job_id": job.id})
    return state
