"""Harmonization: paste an object into the model's scene (`naive` + `mask`) and get it back in the scene's style.

`POST /v1/models/{id}/harmonizations` creates a `harmonize` job; the finished job (`GET /v1/jobs/{id}`) carries
`result.url` and, with fine-tuning, `result.checkpoint_url`. Downloads: presigned URLs on S3, the streamed
routes below on local storage.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import JobDep, ModelDep, ServicesDep, SessionDep
from api.limits import read_limited
from api.problems import PROBLEM_RESPONSES
from api.routers.common import Idempotent, accepted_or_done, require_multipart, require_queue_room
from api.routers.jobs import job_body
from api.routers.models import DECLARED_IMAGE_TYPES, IdempotencyKey, Prefer
from api.schemas import HarmonizationCreate, JobRead
from core import harmonization, idempotency
from core.errors import InvalidParameter, NotFound, ServiceError, UnsupportedMediaType
from core.images import ValidImage, validate_image
from core.models import Job, JobKind, JobState
from core.storage import ObjectNotFound, job_object_key

router = APIRouter(tags=["harmonizations"], responses=PROBLEM_RESPONSES)

FILE_FIELDS = ("naive", "mask")
_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b60"
_MODEL_ID = "mdl_0193a1b2c3d4e5f60718293a4b5c"
_JOB_EXAMPLE: dict[str, Any] = {
    "id": _JOB_ID,
    "object": "job",
    "kind": "harmonize",
    "state": "succeeded",
    "model_id": _MODEL_ID,
    "params": {"stage": 0, "fine_tune": True, "fine_tune_iters": 50, "seed": 3},
    "progress": {"stage": 2, "num_stages": 3, "iteration": 50, "iters_per_stage": 50, "percent": 100.0},
    "error": None,
    "attempts": 1,
    "cancel_requested": False,
    "created_at": "2026-11-25T09:10:00Z",
    "started_at": "2026-11-25T09:10:01Z",
    "finished_at": "2026-11-25T09:10:09Z",
    "duration_s": 8.2,
    "samples": [],
    "result": {
        "url": f"https://s3.example.com/consingan/models/{_MODEL_ID}/jobs/{_JOB_ID}/result.png?X-Amz-Signature=...",
        "checkpoint_url": f"https://s3.example.com/consingan/models/{_MODEL_ID}/jobs/{_JOB_ID}/"
        "checkpoint.safetensors?X-Amz-Signature=...",
    },
    "links": {"self": f"/v1/jobs/{_JOB_ID}", "events": f"/v1/jobs/{_JOB_ID}/events"},
}


async def _refuse_unknown_fields(request: Request) -> None:
    known = {*HarmonizationCreate.model_fields, *FILE_FIELDS}
    unknown = sorted(set((await request.form()).keys()) - known)
    if unknown:
        errors = [{"loc": ["body", n], "msg": "unknown field", "type": "extra_forbidden"} for n in unknown]
        raise InvalidParameter(f"unknown form fields: {', '.join(unknown)}", errors=errors)


async def _validated(upload: UploadFile, field: str, settings: Any) -> ValidImage:
    """The same checks as the training upload; the problem's detail names the part."""
    try:
        if (upload.content_type or "").lower() not in DECLARED_IMAGE_TYPES:
            raise UnsupportedMediaType(f"declared {upload.content_type}; send PNG, JPEG or WebP")
        raw = await read_limited(upload, settings.max_upload_bytes)
        return await run_in_threadpool(
            validate_image,
            raw,
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            min_side=settings.min_image_side,
        )
    except ServiceError as e:
        raise type(e)(f"{field}: {e.detail}", **e.extensions) from e


@router.post(
    "/v1/models/{model_id}/harmonizations",
    status_code=202,
    response_model=JobRead,
    summary="Harmonize a pasted object into the model's scene (a harmonize job)",
    description=(
        "Multipart: `naive` (the cut-and-paste, PNG/JPEG/WebP), `mask` (same size; white where the object "
        "is, thresholded at 50% grey) and the fields below. The model should be trained with "
        "`mode=harmonization` (or `editing`). The result has the naive image's size; pixels far from the "
        "mask keep the naive image's values. With `fine_tune=true` the model is first fine-tuned on the "
        "naive image and the fine-tuned checkpoint is stored with the result."
    ),
    dependencies=[Depends(require_multipart), Depends(require_queue_room)],
    responses={
        202: {"description": "job queued", "content": {"application/json": {"example": _JOB_EXAMPLE}}},
        200: {"description": "finished within `Prefer: wait=N`; `result` filled"},
        409: {"description": "the model's training has not succeeded"},
        413: {"description": "an image or the body is too large"},
        415: {"description": "not multipart, or an image that is not PNG/JPEG/WebP"},
        422: {"description": "not an image, mask of another size, empty mask, stage out of range"},
        503: {"description": "the job queue is unreachable"},
    },
)
async def create_harmonization(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    session: SessionDep,
    data: Annotated[HarmonizationCreate, Form()],
    naive: Annotated[UploadFile, File(description="the cut-and-paste: the scene with the object pasted in")],
    mask: Annotated[UploadFile, File(description="same size as `naive`; white on black where the object is")],
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    harmonization.require_trained(model)
    harmonization.check_stage(model, data.stage)
    if data.fine_tune_iters is not None and not data.fine_tune:
        msg = "fine_tune_iters is only used with fine_tune=true"  # rather than silently not fine-tuning
        raise InvalidParameter(msg, errors=[{"loc": ["body", "fine_tune_iters"], "msg": msg}])
    await _refuse_unknown_fields(request)
    naive_image = await _validated(naive, "naive", services.settings)
    mask_image = await _validated(mask, "mask", services.settings)
    path = f"/v1/models/{model.id}/harmonizations"
    images_hash = f"{naive_image.sha256}:{mask_image.sha256}"
    req_hash = idempotency.request_hash("POST", path, data.model_dump(mode="json"), images_hash)
    idem = Idempotent(services, session, model.owner_id, idempotency_key, req_hash)
    if replay := await run_in_threadpool(idem.replay):
        return replay
    params: dict[str, Any] = {
        "stage": data.stage,
        "fine_tune": data.fine_tune,
        "seed": data.seed if data.seed is not None else secrets.randbelow(2**31),
    }
    if data.fine_tune:
        params["fine_tune_iters"] = data.fine_tune_iters or harmonization.default_fine_tune_iters(model)

    def remember(job: Job) -> None:
        idem.remember(JobRead.of(job).model_dump(mode="json"), f"/v1/jobs/{job.id}")

    def create() -> str:
        return harmonization.create_harmonization_job(
            session, services.storage, services.queue, model, naive_image, mask_image, params, remember
        ).id

    job_id, replay = await idem.create(create)
    if job_id is None:
        assert replay is not None
        return replay
    base_url = str(request.base_url)
    return await accepted_or_done(
        services, job_id, prefer, lambda: job_body(services, job_id, base_url), f"/v1/jobs/{job_id}"
    )


def _download(job: Job, services: Any, name: str, media_type: str, filename: str) -> Response:
    if job.kind != JobKind.HARMONIZE or job.state != JobState.SUCCEEDED:
        raise NotFound(f"job {job.id!r} has no {filename}")
    if name == harmonization.CHECKPOINT and not job.params.get("fine_tune"):
        raise NotFound(f"job {job.id!r} did not fine-tune; it has no checkpoint")
    key = job_object_key(job.model_id, job.id, name)
    url = services.storage.presigned_url(key)
    if url:
        return RedirectResponse(url, status_code=307)
    try:
        chunks = services.storage.iter_chunks(key)
        first = next(chunks, b"")
    except ObjectNotFound as e:
        raise NotFound(f"job {job.id!r} has no stored {filename}") from e

    def stream() -> Any:
        yield first
        yield from chunks

    headers = {"Content-Disposition": f'attachment; filename="{job.id}-{filename}"'}
    return StreamingResponse(stream(), media_type=media_type, headers=headers)


@router.get(
    "/v1/jobs/{job_id}/result",
    summary="Download a harmonize job's composite (streamed, or a redirect to a presigned URL)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 307: {"description": "redirect to object storage"}},
)
def download_result(job: JobDep, services: ServicesDep) -> Response:
    return _download(job, services, harmonization.RESULT, "image/png", "result.png")


@router.get(
    "/v1/jobs/{job_id}/checkpoint",
    summary="Download a harmonize job's fine-tuned checkpoint (safetensors)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        307: {"description": "redirect to object storage"},
    },
)
def download_checkpoint(job: JobDep, services: ServicesDep) -> Response:
    return _download(
        job, services, harmonization.CHECKPOINT, "application/octet-stream", "checkpoint.safetensors"
    )
