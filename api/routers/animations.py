"""Animations: `POST /v1/models/{id}/animations` renders a random walk around the training image (an `animate`
job); the finished job's `result.url` is the GIF, WebP or MP4."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api import examples
from api.contract import creating_responses, problem_responses
from api.creating import IdempotencyKey, Prefer, create, require_queue_room
from api.deps import ModelDep, ServicesDep
from api.schemas import AnimationCreate, JobRead
from api.uploads import require_json
from core.models import JobKind
from core.submit import JobRequest

router = APIRouter(tags=["animations"], responses=problem_responses(401, 404, 422, 503))


@router.post(
    "/v1/models/{model_id}/animations",
    status_code=202,
    response_model=JobRead,
    summary="Animate a trained model's scene (an animate job)",
    description=(
        "Any trained model animates; models trained with `mode=animation` are made for it. `alpha` pulls "
        "the walk back to the training image, `beta` keeps its momentum; stages below `start_stage` stay "
        "fixed (steadier layout). frames x the model's pixels is capped; beyond it the answer is a 422 "
        "that says how many frames this model allows."
    ),
    dependencies=[Depends(require_json), Depends(require_queue_room)],
    responses={
        **creating_responses(
            JobRead,
            examples.ANIMATE_JOB,
            queued="job queued",
            finished="the job ended within `Prefer: wait=N`; `result` filled when it succeeded",
            notes={400: "the body is not JSON", 415: "the body is not application/json"},
        ),
        **problem_responses(409, notes={409: "the model's training has not succeeded"}),
    },
)
async def create_animation(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    body: AnimationCreate,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    work = JobRequest(
        kind=JobKind.ANIMATE,
        owner_id=model.owner_id,
        path=f"/v1/models/{model.id}/animations",
        params=body.model_dump(),
        model=model,
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)
