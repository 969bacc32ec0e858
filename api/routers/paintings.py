"""Paint-to-image: a rough painting of the scene comes back with the photo's textures (SinGAN §4).

`POST /v1/models/{id}/paintings` creates a `paint` job; the finished job (`GET /v1/jobs/{id}`) lists
`result.files`, one PNG per draw, at the model's top size.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from api import examples
from api.contract import creating_responses, problem_responses
from api.creating import IdempotencyKey, Prefer, create, require_queue_room
from api.deps import ModelDep, ServicesDep
from api.schemas import JobRead, PaintingCreate
from api.uploads import MULTIPART, multipart_with, read_image, refuse_repeated_fields
from core import vocabulary
from core.models import JobKind
from core.submit import JobRequest

router = APIRouter(tags=["paintings"], responses=problem_responses(401, 404, 422, 503))


@router.post(
    "/v1/models/{model_id}/paintings",
    status_code=202,
    response_model=JobRead,
    summary="Turn a rough painting of the scene into an image with the photo's textures (a paint job)",
    description=(
        "Multipart: `painting` (PNG/JPEG/WebP, best in the training image's aspect ratio and roughly its "
        "colours) and the fields below. The painting is resized to the model's stage `stage - 1`, upsampled "
        "to stage `stage` and injected there; the finer stages add the photo's textures with fresh noise, "
        "one draw per image. With `quantize=true` its colours are first snapped to the training image's "
        f"{vocabulary.PAINT_PALETTE_SIZE} k-means colours. Models trained with mode "
        f"{', '.join(vocabulary.PAINT_MODES)} only."
    ),
    dependencies=[Depends(multipart_with("painting")), Depends(require_queue_room)],
    responses={
        **creating_responses(
            JobRead,
            examples.PAINT_JOB,
            queued="job queued",
            finished="the job ended within `Prefer: wait=N`; `result.files` filled when it succeeded",
            notes={
                415: "not multipart, or an image that is not PNG/JPEG/WebP",
                422: "invalid fields, not an image, a stage out of range, a harmonization or editing model, "
                "or an Idempotency-Key reused for another request",
            },
        ),
        **problem_responses(409, notes={409: "the model's training has not succeeded"}),
    },
)
async def create_painting(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    data: Annotated[PaintingCreate, Form(media_type=MULTIPART)],
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    await refuse_repeated_fields(request)
    # decoded at most at the largest training size: the engine resizes it to the model's stages anyway
    painting = await read_image(request, data.painting, "painting", reduce_to=vocabulary.TRAINING_DECODE_SIDE)
    work = JobRequest(
        kind=JobKind.PAINT,
        owner_id=model.owner_id,
        path=f"/v1/models/{model.id}/paintings",
        params=data.job_params(),
        model=model,
        uploads={"painting": painting},
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)
