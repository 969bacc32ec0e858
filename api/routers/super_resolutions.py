"""Super-resolution (SinGAN's, on ConSinGAN models through an SR head: superres-spec §3.3).

`POST /v1/models/{id}/sr-head` trains a head for a model trained earlier (a `train_sr_head` job; models
created with `sr_factor` get theirs with their training). `POST /v1/models/{id}/super-resolutions` enlarges
the model's top training image, or one of its samples (a `super_resolve` job); the finished job's
`result.files` are the enlarged PNGs.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api import examples
from api.contract import creating_responses, problem_responses
from api.creating import IdempotencyKey, Prefer, create, require_queue_room
from api.deps import ModelDep, ServicesDep
from api.schemas import JobRead, SRHeadCreate, SuperResolutionCreate
from api.uploads import json_not_images, require_json
from core.models import JobKind
from core.submit import JobRequest

router = APIRouter(tags=["super-resolution"], responses=problem_responses(401, 404, 422, 503))

NOT_AN_UPLOAD = (
    "super-resolution enlarges the model's training image or one of its samples: send JSON "
    '({"factor": 4} or {"source": {"sample_id": ...}}); to enlarge another image, train a model on it '
    "(POST /v1/models with sr_factor)"
)


@router.post(
    "/v1/models/{model_id}/sr-head",
    status_code=202,
    response_model=JobRead,
    summary="Train a super-resolution head for a trained model (a train_sr_head job)",
    description=(
        "SinGAN's finest-scale generator, trained on the model's top image for the step of `factor` (x4 by "
        "default: 6 passes of 2^(1/3); x2 and x8 share that step), with the model's own samples as its "
        "adversarial inputs. About one more stage of training. Generation, retarget and animation models."
    ),
    dependencies=[Depends(require_json), Depends(require_queue_room)],
    responses={
        **creating_responses(
            JobRead,
            examples.SR_HEAD_JOB,
            queued="job queued",
            finished="the job ended within `Prefer: wait=N`; the model's `sr_head` is set when it succeeded",
            notes={400: "the body is not JSON", 415: "the body is not application/json"},
        ),
        **problem_responses(
            409, notes={409: "the model's training has not succeeded, or it has a head (send replace=true)"}
        ),
    },
)
async def create_sr_head(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    body: SRHeadCreate,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    work = JobRequest(
        kind=JobKind.TRAIN_SR_HEAD,
        owner_id=model.owner_id,
        path=f"/v1/models/{model.id}/sr-head",
        params=body.model_dump(),
        model=model,
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)


@router.post(
    "/v1/models/{model_id}/super-resolutions",
    status_code=202,
    response_model=JobRead,
    summary="Enlarge the model's image with invented detail (a super_resolve job)",
    description=(
        "K = round(3·log2 factor) passes of one upsampling step and the model's SR head with fresh noise, "
        "then a top-left crop to ⌊f·h⌋ x ⌊f·w⌋ of the model's top training image (not the upload: a 650 px "
        "upload trained at max_size=250 is enlarged from 250 px), or of one of its samples. PSNR stays below "
        "bicubic's by design: the detail is plausible, not the true one."
    ),
    dependencies=[Depends(json_not_images(NOT_AN_UPLOAD)), Depends(require_queue_room)],
    responses={
        **creating_responses(
            JobRead,
            examples.SUPER_RESOLVE_JOB,
            queued="job queued",
            finished="the job ended within `Prefer: wait=N`; `result.files` are the enlarged PNGs",
            notes={
                400: "the body is not JSON",
                415: "an image or a form was sent: this route enlarges the model's own image",
            },
        ),
        **problem_responses(
            409,
            notes={
                409: "the model's training has not succeeded, or it has no SR head (sr-head-missing: train "
                "one with POST /v1/models/{id}/sr-head)",
                422: "invalid fields, or output-too-large (`max_factor` says the largest this model allows)",
            },
        ),
    },
)
async def create_super_resolution(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    body: SuperResolutionCreate,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    work = JobRequest(
        kind=JobKind.SUPER_RESOLVE,
        owner_id=model.owner_id,
        path=f"/v1/models/{model.id}/super-resolutions",
        params=body.job_params(),
        model=model,
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)
