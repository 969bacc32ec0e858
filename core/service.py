"""Service operations behind the HTTP routes: framework-free, so they are testable without HTTP.

Ordering rules: objects are written before the rows that point at them, rows are committed before a task is
sent, and on any failure before commit the objects written so far are deleted again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core import idempotency, jobs
from core.errors import Conflict, NotFound, ServiceUnavailable, TooManyJobs
from core.ids import new_id
from core.images import ValidImage
from core.models import FINAL_STATES, Job, JobEvent, JobKind, JobState, Model, Sample, utcnow
from core.queue import JobQueue, QueueUnavailable
from core.storage import Storage, input_key, model_prefix

log = logging.getLogger(__name__)
T = TypeVar("T")


def _send_after_commit(session: Session, queue: JobQueue, job: Job) -> None:
    """If the broker is down the job can never run: fail it with the reason, then tell the client (503)."""
    try:
        queue.send_job(job.id, JobKind(job.kind))
    except QueueUnavailable as e:
        log.error("could not enqueue job", extra={"job_id": job.id, "error": str(e)})
        jobs.fail(session, job, "the job queue was unreachable; submit again", expected=JobState.QUEUED)
        idempotency.forget_remembered(session)  # the client's retry with the same key must really retry
        session.commit()
        raise ServiceUnavailable("the job queue is unreachable; try again shortly") from e


def create_model(
    session: Session,
    storage: Storage,
    queue: JobQueue,
    owner_id: str,
    image: ValidImage,
    params: dict[str, Any],
    webhook_url: str | None,
    webhook_events: list[str],
    before_commit: Callable[[Model], None] | None = None,
) -> Model:
    model_id = new_id("mdl")
    storage.put(input_key(model_id), image.png, "image/png")
    try:
        model = Model(
            id=model_id,
            owner_id=owner_id,
            params=params,
            image_width=image.width,
            image_height=image.height,
            input_key=input_key(model_id),
            webhook_url=webhook_url,
            webhook_events=webhook_events,
            created_at=utcnow(),
        )
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN, {})
        session.refresh(model, ["train_job"])  # load the view of the new job now, while it is flushed
        if before_commit:
            before_commit(model)
        session.commit()
    except BaseException:
        session.rollback()
        storage.delete_prefix(model_prefix(model_id))
        raise
    log.info("model created", extra={"model_id": model_id, "job_id": job.id, "owner_id": owner_id})
    _send_after_commit(session, queue, job)
    return model


def check_queue_room(session: Session, owner_id: str, limit: int, retry_after_s: int) -> None:
    """Refuse a new job while the owner has `limit` unfinished ones. Two racing requests may both pass at the
    limit; it bounds a flood, not an exact count."""
    unfinished = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.owner_id == owner_id, Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
    )
    if (unfinished or 0) >= limit:
        raise TooManyJobs(
            f"you have {unfinished} unfinished jobs (the limit is {limit}); wait for some to finish",
            headers={"Retry-After": str(retry_after_s)},
            limit=limit,
        )


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


def cancel_job(session: Session, job: Job) -> Job:
    if job.state == JobState.CANCELED or job.cancel_requested:
        return job
    if job.state in FINAL_STATES:
        raise Conflict(f"the job already {job.state}; there is nothing to cancel", state=job.state)
    if not jobs.request_cancel(session, job):
        session.rollback()
        session.refresh(job)
        if job.state != JobState.CANCELED:
            raise Conflict(f"the job already {job.state}; there is nothing to cancel", state=job.state)
    session.commit()
    session.refresh(job)
    return job


def cancel_model(session: Session, model: Model) -> Model:
    if model.train_job is not None:
        cancel_job(session, model.train_job)
        session.refresh(model)
    return model


def delete_model(session: Session, storage: Storage, model: Model) -> None:
    """Rows first, then objects: a failure in between leaves orphaned objects (swept later), never rows
    pointing at missing objects. A worker still running on it finds its rows gone and discards its output."""
    for job in session.scalars(select(Job).where(Job.model_id == model.id)):
        if job.state not in FINAL_STATES:
            jobs.request_cancel(session, job)
    model_id = model.id
    session.delete(model)
    session.commit()
    removed = storage.delete_prefix(model_prefix(model_id))
    log.info("model deleted", extra={"model_id": model_id, "objects_removed": removed})


def create_sample_job(
    session: Session,
    queue: JobQueue,
    model: Model,
    params: dict[str, Any],
    before_commit: Callable[[Job], None] | None = None,
) -> Job:
    train_job = model.train_job
    if train_job is None or train_job.state != JobState.SUCCEEDED or not model.checkpoint_key:
        state = train_job.state if train_job else "missing"
        raise Conflict(f"the model is {state}; samples can be drawn once its training succeeded", state=state)
    job = jobs.create_job(session, model, JobKind.SAMPLE, params)
    if before_commit:
        before_commit(job)
    session.commit()
    log.info("sample job created", extra={"model_id": model.id, "job_id": job.id})
    _send_after_commit(session, queue, job)
    return job


def new_sample_id() -> str:
    return new_id("smp")
