"""Submit a job: the one way every kind of work enters the service.

`submit` owns the sequence every creating route shares: idempotency (replay a stored response, or refuse a
reused key), the kind's rules (`core.kind_rules`), drawing the seed, the per-owner limit of unfinished jobs,
storing the inputs, inserting the rows, remembering the response, committing, and sending the task. Order:

1. objects first (under ids drawn up front), so a row never points at a missing object;
2. then one transaction that locks the owner's row, counts the unfinished jobs, inserts, and commits: N
   parallel requests of one owner accept exactly the room that is left (Postgres row lock; SQLite's single
   writer), and nothing is visible before it is complete;
3. after the commit the unit of work sends the task. If the broker is down the job can never run: it is
   undone (rows, objects, Idempotency-Key; no webhook), and the client gets a 503 with Retry-After.
A failure before the commit deletes the objects written in step 1.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import idempotency, jobs
from core.errors import ServiceUnavailable, TooManyJobs
from core.ids import new_id
from core.images import ValidImage
from core.kind_rules import RULES, RuleContext
from core.models import IdempotencyRecord, Job, JobKind, JobState, Model, Owner, utcnow
from core.services import Services
from core.settings import Settings
from core.storage import input_key, job_object_key, job_objects_prefix, model_prefix
from core.unit_of_work import EnqueueFailed, UnitOfWork
from core.vocabulary import SEED_MAX

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewModel:
    """What `POST /v1/models` creates besides its train job."""

    image: ValidImage
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRequest:
    """One parsed request for work. `params` are the request's fields, already checked at the edge."""

    kind: JobKind
    owner_id: str
    path: str  # the request path: part of the idempotency fingerprint
    params: dict[str, Any]
    model: Model | None = None  # the model the job runs on; None when the request creates it
    new_model: NewModel | None = None
    uploads: Mapping[str, ValidImage] = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]
    location: str | None


@dataclass(frozen=True)
class Submitted:
    job_id: str | None
    model_id: str | None
    replay: StoredResponse | None = None  # set when the Idempotency-Key answered from memory


# Renders the 202 body and Location the client gets, to remember them with the job (the API decides how).
Respond = Callable[[Session, Job], tuple[dict[str, Any], str]]


def submit(services: Services, request: JobRequest, respond: Respond) -> Submitted:
    request_hash = fingerprint(request)
    replay = _replay(services, request, request_hash)
    if replay is not None:
        return Submitted(None, None, replay)
    rules = RULES[request.kind]
    context = RuleContext(services.settings, services.db)
    params = rules.complete(request.model, _with_seed(request.params), _inputs(request), context)
    job_id = jobs.new_job_id()
    model_id = request.model.id if request.model else new_id("mdl")
    with UnitOfWork(services.db, services.queue) as uow:
        _store_inputs(services, uow, request, model_id, job_id, rules.uploads)
        claim_queue_room(uow.session, request.owner_id, services.settings)
        model = _create_model(uow.session, request, model_id, params) if request.new_model else request.model
        assert model is not None
        job_params = {} if request.kind == JobKind.TRAIN else params  # a training's params are its model's
        job = jobs.create_job(uow.session, model, request.kind, job_params, job_id)
        if request.idempotency_key:
            body, location = respond(uow.session, job)
            idempotency.remember(
                uow.session, request.owner_id, request.idempotency_key, request_hash, 202, body, location
            )
        try:
            uow.commit()
        except IntegrityError:  # a twin request with the same Idempotency-Key committed first
            twin = _replay(services, request, request_hash)
            if twin is None:
                raise
            return Submitted(None, None, twin)
        except EnqueueFailed as e:
            _abandon(services, uow, job, request, e)
    log.info("job submitted", extra={"kind": request.kind.value, "job_id": job_id, "model_id": model_id})
    return Submitted(job_id, model_id)


def fingerprint(request: JobRequest) -> str:
    """The Idempotency-Key's request hash: fields, uploads' digests and the path."""
    fields = dict(request.params)
    blobs = dict(request.uploads)
    if request.new_model:
        blobs["image"] = request.new_model.image
        fields["webhook_url"] = request.new_model.webhook_url
        fields["webhook_events"] = list(request.new_model.webhook_events)
    digest = ":".join(blobs[name].sha256 for name in sorted(blobs))
    return idempotency.request_hash("POST", request.path, fields, digest)


def _replay(services: Services, request: JobRequest, request_hash: str) -> StoredResponse | None:
    if not request.idempotency_key:
        return None
    ttl = services.settings.idempotency_ttl_s
    with services.db.transaction() as session:
        record = idempotency.find_replay(
            session, request.owner_id, request.idempotency_key, request_hash, ttl
        )
        if record is None:
            return None
        return StoredResponse(record.status_code, record.response_body, record.location)


def _inputs(request: JobRequest) -> Mapping[str, ValidImage]:
    """The images a kind's rules check: the uploads, and the new model's training image as `image`."""
    if request.new_model is None:
        return request.uploads
    return {**request.uploads, "image": request.new_model.image}


def _with_seed(params: dict[str, Any]) -> dict[str, Any]:
    """The seed is stored, so every result can be reproduced."""
    if params.get("seed") is not None:
        return params
    return {**params, "seed": secrets.randbelow(SEED_MAX + 1)}


def _store_inputs(
    services: Services,
    uow: UnitOfWork,
    request: JobRequest,
    model_id: str,
    job_id: str,
    uploads: Mapping[str, str],
) -> None:
    storage = services.storage
    # Each cleanup is registered once its first object is stored: a storage that is away fails the put and
    # there is nothing to delete (and no second wait on a silent storage before the client gets its 503). An
    # object stored although its put failed (the answer lost) has no row: the orphan sweep removes it.
    if request.new_model:
        storage.put(input_key(model_id), request.new_model.image.png, "image/png")
        uow.on_rollback(lambda: storage.delete_prefix(model_prefix(model_id)))
    for index, (field_name, file_name) in enumerate(uploads.items()):
        storage.put(job_object_key(model_id, job_id, file_name), request.uploads[field_name].png, "image/png")
        if index == 0:
            uow.on_rollback(lambda: storage.delete_prefix(job_objects_prefix(model_id, job_id)))


def unfinished_jobs(session: Session, owner_id: str) -> int:
    query = (
        select(func.count())
        .select_from(Job)
        .where(Job.owner_id == owner_id, Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
    )
    return int(session.scalar(query) or 0)


def _require_room(session: Session, owner_id: str, settings: Settings) -> None:
    unfinished, limit = unfinished_jobs(session, owner_id), settings.max_queued_jobs_per_owner
    if unfinished >= limit:
        raise TooManyJobs(
            f"you have {unfinished} unfinished jobs (the limit is {limit}); wait for some to finish",
            headers={"Retry-After": str(settings.queue_full_retry_after_s)},
            limit=limit,
        )


def refuse_when_queue_full(
    session: Session, owner_id: str, idempotency_key: str | None, settings: Settings
) -> None:
    """The cheap early 429, before a request's body is read. A retry with a known Idempotency-Key passes: it
    gets its stored response (or the key conflict). `claim_queue_room` decides exactly, at insert time."""
    if idempotency_key and session.scalar(
        select(IdempotencyRecord.id).where(
            IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == idempotency_key
        )
    ):
        return
    _require_room(session, owner_id, settings)


def claim_queue_room(session: Session, owner_id: str, settings: Settings) -> None:
    """Lock the owner's row for the rest of the transaction, then count: concurrent submissions of one
    owner take turns between here and their commit. The UPDATE is the transaction's first write, so on
    SQLite it takes the database's write lock before the count reads anything."""
    session.execute(
        update(Owner).where(Owner.id == owner_id).values(name=Owner.name),
        execution_options={"synchronize_session": False},
    )
    _require_room(session, owner_id, settings)


def _create_model(session: Session, request: JobRequest, model_id: str, params: dict[str, Any]) -> Model:
    assert request.new_model is not None
    image = request.new_model.image
    model = Model(
        id=model_id,
        owner_id=request.owner_id,
        params=params,
        image_width=image.width,
        image_height=image.height,
        input_key=input_key(model_id),
        webhook_url=request.new_model.webhook_url,
        webhook_events=list(request.new_model.webhook_events),
        created_at=utcnow(),
    )
    session.add(model)
    session.flush()
    return model


def _abandon(
    services: Services, uow: UnitOfWork, job: Job, request: JobRequest, error: EnqueueFailed
) -> None:
    """The job committed but its task could not be sent (the broker is down): nothing would ever run it, and
    the client gets a 503, not the job's id. So none of it may stay: the rows go (a new model with its job,
    or the job; their events cascade), then the stored inputs, and the Idempotency-Key is forgotten (the
    client's retry must really retry). No final state, so no webhook for an id the client never got."""
    log.error("could not enqueue job; submission undone", extra={"job_id": job.id, "error": str(error)})
    if request.new_model:
        uow.session.execute(delete(Model).where(Model.id == job.model_id))
    else:
        uow.session.execute(delete(Job).where(Job.id == job.id))
    if request.idempotency_key:
        idempotency.forget(uow.session, request.owner_id, request.idempotency_key)
    uow.commit()
    try:
        if request.new_model:
            services.storage.delete_prefix(model_prefix(job.model_id))
        else:
            services.storage.delete_prefix(job_objects_prefix(job.model_id, job.id))
    except Exception:  # the orphan sweep removes them later
        log.warning(
            "could not delete an undone submission's objects", extra={"job_id": job.id}, exc_info=True
        )
    raise ServiceUnavailable(
        "the job queue is unreachable; nothing was created, try again shortly",
        headers={"Retry-After": str(services.settings.unavailable_retry_after_s)},
    ) from error
