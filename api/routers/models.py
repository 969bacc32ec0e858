"""/v1/models: upload an image to train on, follow the training, cancel, delete, download the checkpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api import examples
from api.contract import creating_responses, download_responses, problem_responses
from api.creating import IdempotencyKey, Prefer, create, require_queue_room
from api.deps import CurrentOwner, ModelDep, ServicesDep, SessionDep
from api.downloads import download
from api.render import model_queue_position, model_read
from api.schemas import ModelCreate, ModelRead, Page
from api.uploads import MULTIPART, multipart_with, read_image, refuse_repeated_fields
from core import service, vocabulary, webhooks
from core.errors import Conflict, InvalidParameter
from core.models import JobKind, JobState
from core.storage import stage_preview_key
from core.submit import JobRequest, NewModel

router = APIRouter(prefix="/v1/models", tags=["models"], responses=problem_responses(401, 404, 422, 503))


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


@router.post(
    "",
    status_code=202,
    response_model=ModelRead,
    summary="Upload an image and start training",
    dependencies=[Depends(multipart_with("image")), Depends(require_queue_room)],
    responses=creating_responses(
        ModelRead,
        examples.MODEL,
        queued="training queued",
        finished="the training ended within `Prefer: wait=N` (see `state`)",
        notes={415: "not multipart, or an image that is not PNG/JPEG/WebP"},
    ),
)
async def create_model(
    request: Request,
    services: ServicesDep,
    owner: CurrentOwner,
    data: Annotated[ModelCreate, Form(media_type=MULTIPART)],
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    await refuse_repeated_fields(request, repeatable={"webhook_events"})
    valid = await read_image(request, data.image, reduce_to=vocabulary.TRAINING_DECODE_SIDE)
    webhook_url = await run_in_threadpool(  # resolves the host name: blocking
        _validated_webhook_url, data.webhook_url, services.settings.allow_private_webhook_urls
    )
    work = JobRequest(
        kind=JobKind.TRAIN,
        owner_id=owner.id,
        path="/v1/models",
        params=data.training_params(),
        new_model=NewModel(valid, webhook_url, tuple(data.webhook_events)),
        idempotency_key=idempotency_key,
    )
    return await create(services, request, work, prefer)


@router.get("", response_model=Page[ModelRead], summary="List your models, newest first")
def list_models(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    owner: CurrentOwner,
    state: Annotated[JobState | None, Query(description="only models in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[
        str | None, Query(max_length=40, description="`next_cursor` of the previous page")
    ] = None,
) -> Page[ModelRead]:
    models, cursor = service.list_models(session, owner.id, state, limit, after)
    base_url = str(request.base_url)
    return Page[ModelRead](
        data=[
            model_read(
                m,
                services.storage,
                base_url,
                services.settings.max_sr_output_pixels,
                model_queue_position(session, m),
            )
            for m in models
        ],
        next_cursor=cursor,
    )


@router.get("/{model_id}", response_model=ModelRead, summary="A model: state, progress, timings, links")
def get_model(request: Request, model: ModelDep, services: ServicesDep, session: SessionDep) -> ModelRead:
    return model_read(
        model,
        services.storage,
        str(request.base_url),
        services.settings.max_sr_output_pixels,
        model_queue_position(session, model),
    )


@router.delete("/{model_id}", status_code=204, summary="Delete a model, its jobs, samples and stored objects")
def delete_model(model: ModelDep, services: ServicesDep) -> Response:
    service.delete_model(services, model)
    return Response(status_code=204)


@router.post(
    "/{model_id}/cancel",
    response_model=ModelRead,
    summary="Cancel the training",
    responses=problem_responses(409, notes={409: "the training already ended"}),
)
def cancel_model(request: Request, model: ModelDep, services: ServicesDep, session: SessionDep) -> ModelRead:
    canceled = service.cancel_model(services, model)
    return model_read(
        canceled,
        services.storage,
        str(request.base_url),
        services.settings.max_sr_output_pixels,
        model_queue_position(session, canceled),
    )


@router.head("/{model_id}/checkpoint", include_in_schema=False)
@router.get(
    "/{model_id}/checkpoint",
    summary="Download the trained model (safetensors; streamed, or a redirect to a presigned URL)",
    description=(
        "The checkpoint `python -m engine sample MODEL_DIR` reads: save it as "
        "`MODEL_DIR/model.safetensors`. safetensors with a JSON header (config, noise amplitudes, "
        "pyramid shapes, format version); never a pickle."
    ),
    response_class=Response,
    responses={
        **download_responses("application/octet-stream"),
        **problem_responses(409, notes={409: "the model's training has not succeeded"}),
    },
)
def download_model_checkpoint(request: Request, model: ModelDep, services: ServicesDep) -> Response:
    job = model.train_job
    if job is None or job.state != JobState.SUCCEEDED or not model.checkpoint_key:
        state = job.state if job else "missing"
        raise Conflict(
            f"the model is {state}; its checkpoint exists once its training succeeded", state=state
        )
    return download(
        services.storage,
        model.checkpoint_key,
        "application/octet-stream",
        f"{model.id}.safetensors",
        f"model {model.id!r} has no stored checkpoint",
        head=request.method == "HEAD",
    )


@router.head("/{model_id}/input", include_in_schema=False)
@router.get(
    "/{model_id}/input",
    summary="Download the image the model trains on (PNG; streamed, or a redirect to a presigned URL)",
    description="The upload as stored: decoded and re-encoded as RGB PNG, at its uploaded size.",
    response_class=Response,
    responses=download_responses("image/png"),
)
def download_model_input(request: Request, model: ModelDep, services: ServicesDep) -> Response:
    return download(
        services.storage,
        model.input_key,
        "image/png",
        f"{model.id}-input.png",
        f"model {model.id!r} has no stored input image",
        head=request.method == "HEAD",
    )


@router.head("/{model_id}/stages/{stage}/preview", include_in_schema=False)
@router.get(
    "/{model_id}/stages/{stage}/preview",
    summary="An image the model drew when a stage of its training finished (PNG)",
    description=(
        "Announced by the training job's `stage_done` event (`links.preview`) while training goes on; "
        "the last stage's images are the training's preview samples instead."
    ),
    response_class=Response,
    responses={
        **download_responses("image/png"),
        **problem_responses(
            404, notes={404: "no such model, or that stage has not finished or has no preview"}
        ),
    },
)
def download_stage_preview(
    request: Request,
    model: ModelDep,
    services: ServicesDep,
    stage: Annotated[int, Path(ge=0, le=vocabulary.MAX_STAGE_INDEX)],
) -> Response:
    return download(
        services.storage,
        stage_preview_key(model.id, stage),
        "image/png",
        f"{model.id}-stage-{stage}.png",
        f"model {model.id!r} has no preview of stage {stage}",
        head=request.method == "HEAD",
    )
