"""/v1/models/{id}/samples: draw new images from a trained model, list them, download one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api import examples
from api.contract import creating_responses, download_responses, problem_responses
from api.creating import IdempotencyKey, Prefer, create, require_queue_room
from api.cursors import SampleCursor
from api.deps import CurrentOwner, ModelDep, ServicesDep, SessionDep
from api.downloads import download
from api.render import sample_read
from api.schemas import JobRead, Page, SampleRead, SampleRequest
from api.uploads import require_json
from core import service
from core.models import JobKind
from core.submit import JobRequest

router = APIRouter(
    prefix="/v1/models/{model_id}/samples", tags=["samples"], responses=problem_responses(401, 404, 422, 503)
)


@router.post(
    "",
    status_code=202,
    response_model=JobRead,
    summary="Draw new images from a trained model (a sample job)",
    dependencies=[Depends(require_json), Depends(require_queue_room)],
    responses={
        **creating_responses(
            JobRead,
            examples.SAMPLE_JOB,
            queued="job queued",
            finished="the job ended within `Prefer: wait=N`; `samples` filled when it succeeded",
            notes={400: "the body is not JSON", 415: "the body is not application/json"},
        ),
        **problem_responses(409, notes={409: "the model's training has not succeeded"}),
    },
)
async def create_samples(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    owner: CurrentOwner,
    body: SampleRequest,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    work = JobRequest(
        kind=JobKind.SAMPLE,
        owner_id=owner.id,
        path=f"/v1/models/{model.id}/samples",
        params=body.model_dump(),
        model=model,
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)


@router.get("", response_model=Page[SampleRead], summary="The model's images, newest first")
def list_samples(
    request: Request,
    model: ModelDep,
    session: SessionDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: SampleCursor = None,
) -> Page[SampleRead]:
    samples, cursor = service.list_samples(session, model, limit, after)
    base_url = str(request.base_url)
    return Page[SampleRead](
        data=[sample_read(s, services.storage, base_url) for s in samples], next_cursor=cursor
    )


@router.head("/{sample_id}/content", include_in_schema=False)
@router.get(
    "/{sample_id}/content",
    summary="Download one image (streamed, or a redirect to a presigned URL)",
    response_class=Response,
    responses=download_responses("image/png"),
)
def download_sample(
    request: Request,
    model: ModelDep,
    session: SessionDep,
    services: ServicesDep,
    sample_id: Annotated[str, Path(max_length=40)],
) -> Response:
    sample = service.get_sample(session, model, sample_id)
    return download(
        services.storage,
        sample.key,
        "image/png",
        f"{sample.id}.png",
        f"sample {sample_id!r} has no stored image",
        head=request.method == "HEAD",
    )


@router.delete("/{sample_id}", status_code=204, summary="Delete one image")
def delete_sample(
    model: ModelDep, services: ServicesDep, sample_id: Annotated[str, Path(max_length=40)]
) -> Response:
    service.delete_sample(services, model, sample_id)
    return Response(status_code=204)
