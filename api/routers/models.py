"""/v1/models: upload an image to train on, follow the training, draw samples from the result."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, Response, UploadFile
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentOwner, ModelDep, ServicesDep, SessionDep
from api.limits import read_limited
from api.problems import PROBLEM_RESPONSES
from api.routers.common import (
    Idempotent,
    accepted_or_done,
    require_json,
    require_multipart,
    require_queue_room,
)
from api.routers.jobs import job_body
from api.schemas import MODEL_EXAMPLE, JobRead, ModelCreate, ModelRead, Page, SampleRead, SampleRequest
from core import idempotency, service, webhooks
from core.errors import InvalidParameter, NotFound, UnsupportedMediaType
from core.images import ACCEPTED_FORMATS, ValidImage, validate_image
from core.models import Job, JobState, Model, Sample
from core.storage import ObjectNotFound

router = APIRouter(prefix="/v1/models", tags=["models"], responses=PROBLEM_RESPONSES)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=idempotency.MAX_KEY_CHARS, description="retry-safe creation key"
    ),
]
Prefer = Annotated[
    str | None, Header(description="`wait=N`: hold the response up to N s (capped) for the result")
]
DECLARED_IMAGE_TYPES = {*ACCEPTED_FORMATS.values(), "application/octet-stream", ""}


def _validated_webhook_url(url: str | None, allow_private: bool) -> str | None:
    if not url:
        return None
    try:
        webhooks.resolve_public(url, allow_private)
    except webhooks.HostNotResolved:
        return url  # maybe DNS is down now; every send checks the resolved address again
    except ValueError as e:
        raise InvalidParameter(str(e), errors=[{"loc": ["body", "webhook_url"], "msg": str(e)}]) from e
    return url


async def _refuse_unknown_fields(request: Request) -> None:
    """A misspelt field (`iter_per_stage`) must not silently train with the preset's value."""
    known = {*ModelCreate.model_fields, "image"}
    unknown = sorted(set((await request.form()).keys()) - known)
    if unknown:
        errors = [
            {"loc": ["body", name], "msg": "unknown field", "type": "extra_forbidden"} for name in unknown
        ]
        raise InvalidParameter(f"unknown form fields: {', '.join(unknown)}", errors=errors)


def _model_body(services: Any, model_id: str) -> dict[str, Any]:
    with services.db.sessions() as session:
        return ModelRead.of(session.get_one(Model, model_id)).model_dump(mode="json")


@router.post(
    "",
    status_code=202,
    response_model=ModelRead,
    summary="Upload an image and start training",
    dependencies=[Depends(require_multipart), Depends(require_queue_room)],
    responses={
        202: {"description": "training queued", "content": {"application/json": {"example": MODEL_EXAMPLE}}},
        200: {"description": "finished within `Prefer: wait=N`"},
        413: {"description": "image or body too large"},
        429: {"description": "too many unfinished jobs; retry after `Retry-After` seconds"},
        415: {"description": "not multipart, or not a PNG/JPEG/WebP"},
        503: {"description": "the job queue is unreachable"},
    },
)
async def create_model(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    owner: CurrentOwner,
    data: Annotated[ModelCreate, Form()],
    image: Annotated[UploadFile, File(description="PNG, JPEG or WebP; the scene to learn")],
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    valid = await _validated_upload(request, image, services.settings)
    webhook_url = await run_in_threadpool(  # resolves the host name: blocking
        _validated_webhook_url, data.webhook_url, services.settings.allow_private_webhook_urls
    )
    req_hash = idempotency.request_hash("POST", "/v1/models", data.model_dump(mode="json"), valid.sha256)
    idem = Idempotent(services, session, owner.id, idempotency_key, req_hash)
    if replay := await run_in_threadpool(idem.replay):
        return replay
    # The seed is stored, so every result can be reproduced.
    params = {"seed": secrets.randbelow(2**31), **data.training_params()}

    def create() -> tuple[str, str]:
        model = service.create_model(
            session, services.storage, services.queue, owner.id, valid, params, webhook_url,
            list(data.webhook_events),
            before_commit=lambda m: idem.remember(ModelRead.of(m).model_dump(mode="json"), f"/v1/models/{m.id}"),
        )  # fmt: skip
        assert model.train_job is not None
        return model.id, model.train_job.id

    created, replay = await idem.create(create)
    if created is None:
        assert replay is not None
        return replay
    model_id, job_id = created
    return await accepted_or_done(
        services, job_id, prefer, lambda: _model_body(services, model_id), f"/v1/models/{model_id}"
    )


async def _validated_upload(request: Request, image: UploadFile, settings: Any) -> ValidImage:
    """Checks in order of cost: field names, declared type, size while reading, then Pillow."""
    await _refuse_unknown_fields(request)
    if (image.content_type or "").lower() not in DECLARED_IMAGE_TYPES:
        raise UnsupportedMediaType(f"the image part is declared {image.content_type}; send PNG, JPEG or WebP")
    raw = await read_limited(image, settings.max_upload_bytes)
    return await run_in_threadpool(
        validate_image,
        raw,
        max_pixels=settings.max_image_pixels,
        max_side=settings.max_image_side,
        min_side=settings.min_image_side,
    )


@router.get("", response_model=Page[ModelRead], summary="List your models, newest first")
def list_models(
    session: SessionDep,
    owner: CurrentOwner,
    state: Annotated[JobState | None, Query(description="only models in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[
        str | None, Query(max_length=40, description="`next_cursor` of the previous page")
    ] = None,
) -> Page[ModelRead]:
    models, cursor = service.list_models(session, owner.id, state, limit, after)
    return Page[ModelRead](data=[ModelRead.of(m) for m in models], next_cursor=cursor)


@router.get("/{model_id}", response_model=ModelRead, summary="A model: state, progress, timings, links")
def get_model(model: ModelDep) -> ModelRead:
    return ModelRead.of(model)


@router.delete("/{model_id}", status_code=204, summary="Delete a model, its jobs, samples and stored objects")
def delete_model(model: ModelDep, session: SessionDep, services: ServicesDep) -> Response:
    service.delete_model(session, services.storage, model)
    return Response(status_code=204)


@router.post(
    "/{model_id}/cancel",
    response_model=ModelRead,
    summary="Cancel the training",
    responses={409: {"description": "the training already ended"}},
)
def cancel_model(model: ModelDep, session: SessionDep) -> ModelRead:
    return ModelRead.of(service.cancel_model(session, model))


def _check_start_stage(model: Model, request: SampleRequest) -> None:
    stages = (model.train_config or {}).get("train_stages")
    if stages is not None and request.start_stage >= stages:
        raise InvalidParameter(
            f"start_stage must be below the model's {stages} stages",
            errors=[{"loc": ["body", "start_stage"], "msg": f"must be < {stages}"}],
        )


@router.post(
    "/{model_id}/samples",
    status_code=202,
    response_model=JobRead,
    summary="Draw new images from a trained model (a sample job)",
    dependencies=[Depends(require_json), Depends(require_queue_room)],
    responses={
        200: {"description": "finished within `Prefer: wait=N`; `samples` filled"},
        409: {"description": "not trained"},
        429: {"description": "too many unfinished jobs; retry after `Retry-After` seconds"},
    },
)
async def create_samples(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    session: SessionDep,
    owner: CurrentOwner,
    body: SampleRequest,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    _check_start_stage(model, body)
    path = f"/v1/models/{model.id}/samples"
    req_hash = idempotency.request_hash("POST", path, body.model_dump())
    idem = Idempotent(services, session, owner.id, idempotency_key, req_hash)
    if replay := await run_in_threadpool(idem.replay):
        return replay
    params = {**body.model_dump(), "seed": body.seed if body.seed is not None else secrets.randbelow(2**31)}

    def remember(job: Job) -> None:
        idem.remember(JobRead.of(job).model_dump(mode="json"), f"/v1/jobs/{job.id}")

    def create() -> str:
        return service.create_sample_job(session, services.queue, model, params, before_commit=remember).id

    job_id, replay = await idem.create(create)
    if job_id is None:
        assert replay is not None
        return replay
    base_url = str(request.base_url)
    return await accepted_or_done(
        services, job_id, prefer, lambda: job_body(services, job_id, base_url), f"/v1/jobs/{job_id}"
    )


@router.get(
    "/{model_id}/samples", response_model=Page[SampleRead], summary="The model's images, newest first"
)
def list_samples(
    request: Request,
    model: ModelDep,
    session: SessionDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[SampleRead]:
    samples, cursor = service.list_samples(session, model, limit, after)
    base_url = str(request.base_url)
    return Page[SampleRead](
        data=[SampleRead.of(s, services.storage, base_url) for s in samples], next_cursor=cursor
    )


@router.get(
    "/{model_id}/samples/{sample_id}/content",
    summary="Download one image (streamed, or a redirect to a presigned URL)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 307: {"description": "redirect to object storage"}},
)
def download_sample(
    model: ModelDep,
    session: SessionDep,
    services: ServicesDep,
    sample_id: Annotated[str, Path(max_length=40)],
) -> Response:
    sample = session.get(Sample, sample_id)
    if sample is None or sample.model_id != model.id:
        raise NotFound(f"no sample {sample_id!r}")
    url = services.storage.presigned_url(sample.key)
    if url:
        return RedirectResponse(url, status_code=307)
    try:
        chunks = services.storage.iter_chunks(sample.key)
        first = next(chunks, b"")
    except ObjectNotFound as e:
        raise NotFound(f"sample {sample_id!r} has no stored image") from e

    def stream() -> Any:
        yield first
        yield from chunks

    return StreamingResponse(
        stream(),
        media_type="image/png",
        headers={"Content-Disposition": f'attachment; filename="{sample.id}.png"'},
    )
