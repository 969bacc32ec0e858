"""Reading, canceling and deleting what the service holds: framework-free, testable without HTTP.

Creating work goes through `core.submit`. Writes here run in a `UnitOfWork`, so the webhooks they cause
(a canceled queued job's) are sent right after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core import jobs
from core.errors import Conflict, NotFound, NothingToKeep
from core.ids import new_id
from core.infra import is_unavailable
from core.models import FINAL_STATES, Job, JobEvent, JobKind, JobState, Model, Sample
from core.services import Services
from core.storage import model_prefix
from core.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")


def get_model(session: Session, owner_id: str, model_id: str) -> Model:
    model = session.get(Model, model_id)
    if model is None or model.owner_id != owner_id:  # another owner's model does not exist for you
        raise NotFound(f"no model {model_id!r}")
    return model


def get_job(session: Session, owner_id: str, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.owner_id != owner_id:
        raise NotFound(f"no job {job_id!r}")
    return job


def _page(
    session: Session, query: Select[T], limit: int, cursor_of: Callable[[T], str]
) -> tuple[list[T], str | None]:
    rows = list(session.scalars(query.limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    return rows, (cursor_of(rows[-1]) if has_more and rows else None)


def list_models(
    session: Session, owner_id: str, state: JobState | None, limit: int, after: str | None
) -> tuple[list[Model], str | None]:
    """Newest first; `after` is the previous page's next_cursor (ids are time-ordered)."""
    query = select(Model).where(Model.owner_id == owner_id).order_by(Model.id.desc())
    if state is not None:
        query = query.join(Job, (Job.model_id == Model.id) & (Job.kind == JobKind.TRAIN.value)).where(
            Job.state == state.value
        )
    if after:
        query = query.where(Model.id < after)
    return _page(session, query, limit, lambda m: m.id)


def list_jobs(
    session: Session,
    owner_id: str,
    *,
    model_id: str | None,
    kind: JobKind | None,
    state: JobState | None,
    limit: int,
    after: str | None,
) -> tuple[list[Job], str | None]:
    """Newest first, the caller's only; `after` is the previous page's next_cursor."""
    query = select(Job).where(Job.owner_id == owner_id).order_by(Job.id.desc())
    if model_id is not None:
        query = query.where(Job.model_id == model_id)
    if kind is not None:
        query = query.where(Job.kind == kind.value)
    if state is not None:
        query = query.where(Job.state == state.value)
    if after:
        query = query.where(Job.id < after)
    return _page(session, query, limit, lambda j: j.id)


def get_sample(session: Session, model: Model, sample_id: str) -> Sample:
    sample = session.get(Sample, sample_id)
    if sample is None or sample.model_id != model.id:
        raise NotFound(f"no sample {sample_id!r}")
    return sample


def list_samples(
    session: Session, model: Model, limit: int, after: str | None
) -> tuple[list[Sample], str | None]:
    query = select(Sample).where(Sample.model_id == model.id).order_by(Sample.id.desc())
    if after:
        query = query.where(Sample.id < after)
    return _page(session, query, limit, lambda s: s.id)


def job_samples(session: Session, job: Job) -> list[Sample]:
    return list(session.scalars(select(Sample).where(Sample.job_id == job.id).order_by(Sample.id)))


def list_job_events(
    session: Session, job: Job, limit: int, after: int | None
) -> tuple[list[JobEvent], str | None]:
    """Oldest first, like a log."""
    query = select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)
    if after is not None:
        query = query.where(JobEvent.id > after)
    return _page(session, query, limit, lambda e: str(e.id))


def cancel_job(services: Services, job: Job, keep_trained_stages: bool = False) -> Job:
    """A queued job is canceled at once (its webhook sent right after the commit); a running one is flagged
    and its worker stops within seconds. Returns the job as it is now. `keep_trained_stages`: see
    `cancel_model`."""
    if job.state == JobState.CANCELED or (
        job.cancel_requested and (job.keep_trained_stages or not keep_trained_stages)
    ):
        return job  # asked again: the same answer
    if job.state in FINAL_STATES:
        raise Conflict(f"the job already {job.state}; there is nothing to cancel", state=job.state)
    if job.cancel_requested:
        # the worker may already have read the plain cancel and be discarding the training
        raise Conflict("a cancel that discards the training was already requested", state=job.state)
    if keep_trained_stages:
        _require_a_stage_to_keep(job)
    with UnitOfWork(services.db, services.queue) as uow:
        changed = jobs.request_cancel(uow.session, job, keep_trained_stages)
        uow.commit()
        fresh = uow.session.get_one(Job, job.id, populate_existing=True)
    if not changed and keep_trained_stages and fresh.state == JobState.QUEUED:
        _require_a_stage_to_keep(fresh)  # re-queued since it was read: nothing runs to keep stages from
    if not changed and fresh.state != JobState.CANCELED:
        raise Conflict(f"the job already {fresh.state}; there is nothing to cancel", state=fresh.state)
    return fresh


def cancel_model(services: Services, model: Model, keep_trained_stages: bool = False) -> Model:
    """Cancel the model's training. With `keep_trained_stages`, a running training that finished at least
    one stage stops and the model succeeds with those stages (a smaller, usable model: its checkpoint is
    the last finished stage's snapshot); without a finished stage that is a 409 `nothing-to-keep` and
    nothing changes (the client decides whether to discard). Without it the training is discarded."""
    if model.train_job is not None:
        cancel_job(services, model.train_job, keep_trained_stages)
    with services.db.read() as session:
        return session.get_one(Model, model.id)


def _require_a_stage_to_keep(job: Job) -> None:
    # stages_done only grows while a job runs, so a check that passes here still holds when the worker stops
    if job.kind != JobKind.TRAIN:
        raise Conflict("keep_trained_stages applies to a model's training only", state=job.state)
    if job.state == JobState.QUEUED:
        # a queued training is discarded at once: no worker holds its stages to turn them into a model
        waiting = (
            "the training waits in the queue to resume; its stages can be kept once it runs again"
            if job.stages_done
            else "the training has not started, so no stage is trained yet"
        )
        raise NothingToKeep(
            f"{waiting}: cancel without keep_trained_stages to discard it",
            state=job.state,
            stages_done=job.stages_done,
        )
    if job.stages_done < 1:
        raise NothingToKeep(
            "no stage has finished yet, so there is nothing to keep: wait for the first stage to finish, "
            "or cancel without keep_trained_stages to discard the training",
            state=job.state,
            stages_done=0,
        )


def delete_model(services: Services, model: Model) -> None:
    """Rows first, then objects: a failure in between leaves orphaned objects (swept later), never rows
    pointing at missing objects. A worker still running on it finds its rows gone and discards its output."""
    with UnitOfWork(services.db, services.queue) as uow:
        for job in uow.session.scalars(select(Job).where(Job.model_id == model.id)):
            if job.state not in FINAL_STATES:
                jobs.request_cancel(uow.session, job)
        uow.session.delete(uow.session.get_one(Model, model.id))
        uow.commit()
    removed = _remove_objects(lambda: services.storage.delete_prefix(model_prefix(model.id)), model.id)
    log.info("model deleted", extra={"model_id": model.id, "objects_removed": removed})


def delete_sample(services: Services, model: Model, sample_id: str) -> None:
    """The row first, then the image (a failure in between leaves an orphan the cleanup sweeps)."""
    with services.db.transaction() as session:
        sample = get_sample(session, model, sample_id)
        key = sample.key
        session.delete(sample)
    _remove_objects(lambda: services.storage.delete(key), model.id)
    log.info("sample deleted", extra={"model_id": model.id, "sample_id": sample_id})


def _remove_objects(remove: Callable[[], int | None], model_id: str) -> int | None:
    """Objects of rows whose delete committed. The delete has happened: a storage that is unavailable now
    leaves objects without rows, which the cleanup sweep removes (`core.maintenance`), so the client is told
    it worked (a 503 would have it retry into a 404)."""
    try:
        return remove()
    except Exception as e:
        if not is_unavailable(e):
            raise
        log.warning(
            "objects of a deleted row left to the cleanup sweep; storage unavailable",
            extra={"model_id": model_id, "error": str(e)[:300]},
        )
        return None


def new_sample_id() -> str:
    return new_id("smp")
