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

from core import jobs
from core.models import Job, JobState, Model
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
) -> JobState:
    """Make a stored result visible: add `rows`, apply `update_model` to the model's row, store `result` on
    the job, and mark it succeeded, all in one transaction that commits only if this attempt still owns the
    job. Otherwise delete `owned_keys` (never `shared_keys`) and return the job's state as it is now."""
    with ctx.transaction() as uow:
        model = uow.session.get(Model, job.model_id)
        if model is None:
            raise JobGone(job.id)  # deleted with its model; run_job removes the model's objects
        if update_model is not None:
            update_model(model)
        uow.session.add_all(rows)
        if jobs.succeed(uow.session, job, attempt=job.attempts, result=result):
            uow.commit()
            return JobState.SUCCEEDED
    log.info(
        "attempt lost its job; discarding what it stored",
        extra={"job_id": job.id, "attempt": job.attempts, "owned": len(owned_keys), "kept": len(shared_keys)},
    )
    for key in owned_keys:
        ctx.storage.delete(key)
    return current_state(ctx, job.id)


def fail(ctx: WorkerContext, job: Job, reason: str) -> JobState:
    with ctx.transaction() as uow:
        won = jobs.fail(uow.session, job, reason, attempt=job.attempts)
        uow.commit()
    return JobState.FAILED if won else current_state(ctx, job.id)


def finish_canceled(ctx: WorkerContext, job: Job) -> JobState:
    with ctx.transaction() as uow:
        won = jobs.mark_canceled(uow.session, job, attempt=job.attempts)
        uow.commit()
    return JobState.CANCELED if won else current_state(ctx, job.id)
