"""Harmonization: paste an object into the model's scene (`naive` + `mask`) and get it back in the scene's style.

`POST /v1/models/{id}/harmonizations` creates a `harmonize` job; the finished job (`GET /v1/jobs/{id}`) carries
`result.url` and, with fine-tuning, `result.checkpoint_url`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from api import examples
from api.contract import creating_responses, problem_responses
from api.creating import IdempotencyKey, Prefer, create, require_queue_room
from api.deps import ModelDep, ServicesDep
from api.schemas import HarmonizationCreate, JobRead
from api.uploads import MULTIPART, multipart_with, read_image, refuse_repeated_fields
from core.models import JobKind
from core.submit import JobRequest

router = APIRouter(tags=["harmonizations"], responses=problem_responses(401, 404, 422, 503))


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
        **creating_responses(
            JobRead,
            examples.HARMONIZE_JOB,
            queued="job queued",
            finished="the job ended within `Prefer: wait=N`; `result` filled when it succeeded",
            notes={
                415: "not multipart, or an image that is not PNG/JPEG/WebP",
                422: "invalid fields, not an image, a mask of another size, an empty mask, a stage out of "
                "range, or an Idempotency-Key reused for another request",
            },
        ),
        **problem_responses(409, notes={409: "the model's training has not succeeded"}),
    },
)
async def create_harmonization(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    data: Annotated[HarmonizationCreate, Form(media_type=MULTIPART)],
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    await refuse_repeated_fields(request)
    uploads = {
        # kept at full size: the result comes back at the naive image's size, and the mask must match it
        "naive": await read_image(request, data.naive, "naive"),
        "mask": await read_image(request, data.mask, "mask"),
    }
    work = JobRequest(
        kind=JobKind.HARMONIZE,
        owner_id=model.owner_id,
        path=f"/v1/models/{model.id}/harmonizations",
        params=data.job_params(),
        model=model,
        uploads=uploads,
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)
