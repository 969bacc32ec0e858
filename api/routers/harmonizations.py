"""Harmonization: paste an object into the model's scene (`naive` + `mask`) and get it back in the scene's style.

`POST /v1/models/{id}/harmonizations` creates a `harmonize` job; the finished job (`GET /v1/jobs/{id}`) carries
`result.url` and, with fine-tuning, `result.checkpoint_url`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile

from api import examples
from api.creating import IdempotencyKey, Prefer, create, require_queue_room
from api.deps import ModelDep, ServicesDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import HarmonizationCreate, JobRead
from api.uploads import check_form_fields, multipart_with, read_image
from core.models import JobKind
from core.submit import JobRequest

router = APIRouter(tags=["harmonizations"], responses=PROBLEM_RESPONSES)


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
    dependencies=[Depends(multipart_with("naive", "mask")), Depends(require_queue_room)],
    responses={
        202: {
            "description": "job queued",
            "content": {"application/json": {"example": examples.HARMONIZE_JOB}},
        },
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
    data: Annotated[HarmonizationCreate, Form()],
    naive: Annotated[UploadFile, File(description="the cut-and-paste: the scene with the object pasted in")],
    mask: Annotated[UploadFile, File(description="same size as `naive`; white on black where the object is")],
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    await check_form_fields(request, {*HarmonizationCreate.model_fields, "naive", "mask"})
    uploads = {
        # kept at full size: the result comes back at the naive image's size, and the mask must match it
        "naive": await read_image(request, naive, "naive"),
        "mask": await read_image(request, mask, "mask"),
    }
    work = JobRequest(
        kind=JobKind.HARMONIZE,
        owner_id=model.owner_id,
        path=f"/v1/models/{model.id}/harmonizations",
        params=data.model_dump(),
        model=model,
        uploads=uploads,
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)
