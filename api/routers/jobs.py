"""/v1/jobs: one unit of GPU work (a training, sampling, harmonization or animation), its events and files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.contract import download_responses, problem_responses
from api.deps import CurrentOwner, JobDep, ServicesDep, SessionDep
from api.downloads import download
from api.event_stream import MEDIA_TYPE, job_events, wants_stream
from api.render import event_read, job_read
from api.schemas import JobEventRead, JobRead, Page
from core import service
from core.errors import InvalidParameter, NotFound
from core.models import Job, JobKind, JobState
from core.results import job_file_key, job_file_names
from core.services import Services
from core.vocabulary import CHECKPOINT_FILE, MEDIA_TYPES, RESULT_FILE

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=problem_responses(401, 404, 422, 503))

# An event id: the cursor is a string like every cursor (a typed client passes `next_cursor` back as it came).
EVENT_CURSOR = r"^[0-9]{1,10}$"
MAX_EVENT_ID = 2**31 - 1


@router.get("", response_model=Page[JobRead], summary="List your jobs, newest first")
def list_jobs(
    request: Request,
    session: SessionDep,
    services: ServicesDep,
    owner: CurrentOwner,
    model_id: Annotated[str | None, Query(max_length=40, description="only this model's jobs")] = None,
    kind: Annotated[JobKind | None, Query(description="only jobs of this kind")] = None,
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[
        str | None, Query(max_length=40, description="`next_cursor` of the previous page")
    ] = None,
) -> Page[JobRead]:
    jobs, cursor = service.list_jobs(
        session, owner.id, model_id=model_id, kind=kind, state=state, limit=limit, after=after
    )
    base_url = str(request.base_url)
    return Page[JobRead](
        data=[job_read(session, services.storage, job, base_url) for job in jobs], next_cursor=cursor
    )


@router.get(
    "/{job_id}", response_model=JobRead, summary="A job: state, progress, error, and its outputs when done"
)
def get_job(request: Request, job: JobDep, session: SessionDep, services: ServicesDep) -> JobRead:
    return job_read(session, services.storage, job, str(request.base_url))


def _event_cursor(value: str | None, loc: list[str]) -> int | None:
    after_id = None if value is None else int(value)
    if after_id is not None and after_id > MAX_EVENT_ID:
        message = "not a cursor of this job's events"
        raise InvalidParameter(f"{'.'.join(loc)}: {message}", errors=[{"loc": loc, "msg": message}])
    return after_id


@router.get(
    "/{job_id}/events",
    response_model=Page[JobEventRead],
    summary="The job's event log, oldest first; live as Server-Sent Events with `Accept: text/event-stream`",
    description="With `Accept: text/event-stream` the answer is a stream (docs/events.md): each event of the "
    "log after the cursor as `id: <event id>`, `event: <type>`, `data: <the event's JSON, as in a page>`; "
    "`event: job` with the job's JSON (state, progress, queue position) whenever the job changed; a "
    "`: heartbeat` comment line every few seconds. It ends after the terminal event (`succeeded`, `failed`, "
    "`canceled`). Resume with `Last-Event-ID` (the last `id:` seen, the same cursor as `after`). Errors "
    "before the stream starts (401, 404, 422) are problem+json.",
    # The stream is described in a vendor extension, not as a second 200 media type: typed clients
    # (openapi-typescript, openapi-python-client) would otherwise type every page as `Page | string`.
    openapi_extra={
        "x-event-stream": {
            "media_type": MEDIA_TYPE,
            "request": "Accept: text/event-stream; optional Last-Event-ID",
            "messages": {
                "<event type>": "id = the event's id (the cursor), data = a JobEventRead",
                "job": "no id, data = a JobRead (state, progress, queue_position) whenever the job changed",
            },
            "ends_after": ["succeeded", "failed", "canceled"],
            "example": 'id: 42\nevent: stage_done\ndata: {"id":42,"type":"stage_done",...}\n\n',
        },
    },
)
def list_job_events(
    request: Request,
    job: JobDep,
    session: SessionDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[
        str | None,
        Query(pattern=EVENT_CURSOR, description="`next_cursor` of the previous page", examples=["42"]),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=EVENT_CURSOR,
            description="event stream only: resume after this event id (wins over `after`)",
            examples=["42"],
        ),
    ] = None,
) -> Page[JobEventRead] | StreamingResponse:
    after_id = _event_cursor(after, ["query", "after"])
    if wants_stream(request.headers.get("accept")):
        resume = _event_cursor(last_event_id, ["header", "Last-Event-ID"])
        stream = job_events(
            services,
            request.app.state.job_watch,
            job.id,
            after_id if resume is None else resume,
            str(request.base_url),
        )
        # no-cache: never stored; X-Accel-Buffering: nginx passes each event on at once
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type=MEDIA_TYPE, headers=headers)
    events, cursor = service.list_job_events(session, job, limit, after_id)
    base_url = str(request.base_url)
    return Page[JobEventRead](
        data=[event_read(e, job, services.storage, base_url) for e in events], next_cursor=cursor
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobRead,
    summary="Cancel a queued or running job",
    responses=problem_responses(409, notes={409: "the job already ended"}),
)
def cancel_job(request: Request, job: JobDep, session: SessionDep, services: ServicesDep) -> JobRead:
    canceled = service.cancel_job(services, job)
    return job_read(session, services.storage, canceled, str(request.base_url))


def _file(request: Request, job: Job, services: Services, name: str) -> Response:
    if job.state != JobState.SUCCEEDED or name not in job_file_names(job):
        raise NotFound(f"job {job.id!r} has no {name}")
    return download(
        services.storage,
        job_file_key(job, name),
        MEDIA_TYPES[name],
        f"{job.id}-{name}",
        f"job {job.id!r} has no stored {name}",
        head=request.method == "HEAD",
    )


@router.head("/{job_id}/files/{name}", include_in_schema=False)
@router.get(
    "/{job_id}/files/{name}",
    summary="Download one of a succeeded job's files (streamed, or a redirect to a presigned URL)",
    response_class=Response,
    responses=download_responses(*sorted(set(MEDIA_TYPES.values()))),
)
def download_job_file(
    request: Request,
    job: JobDep,
    services: ServicesDep,
    name: Annotated[str, Path(max_length=40, examples=["animation.gif"])],
) -> Response:
    return _file(request, job, services, name)


@router.head("/{job_id}/result", include_in_schema=False)
@router.get(
    "/{job_id}/result",
    summary="Download a harmonize job's composite (streamed, or a redirect to a presigned URL)",
    response_class=Response,
    responses=download_responses(MEDIA_TYPES[RESULT_FILE]),
)
def download_job_result(request: Request, job: JobDep, services: ServicesDep) -> Response:
    return _file(request, job, services, RESULT_FILE)


@router.head("/{job_id}/checkpoint", include_in_schema=False)
@router.get(
    "/{job_id}/checkpoint",
    summary="Download a harmonize job's fine-tuned checkpoint (safetensors)",
    response_class=Response,
    responses=download_responses(MEDIA_TYPES[CHECKPOINT_FILE]),
)
def download_job_checkpoint(request: Request, job: JobDep, services: ServicesDep) -> Response:
    return _file(request, job, services, CHECKPOINT_FILE)
