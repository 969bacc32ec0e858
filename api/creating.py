"""The HTTP side of creating work, shared by every creating route: the headers (`Idempotency-Key`,
`Prefer: wait=N`), the early 429, and the answer: a replayed response, a 202, or a 200 with the finished job.
What happens in between is one call to `core.submit.submit`. How a creating route documents its answers is
`api.contract.creating_responses`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentOwner, ServicesDep, SessionDep, release_connection
from api.render import job_read, model_queue_position, model_read
from api.waiting import requested_wait, wait_until_final
from core import idempotency
from core.models import Job, JobKind, Model
from core.services import Services
from core.submit import JobRequest, StoredResponse, refuse_when_queue_full, submit

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=idempotency.MAX_KEY_CHARS, description="retry-safe creation key"
    ),
]
Prefer = Annotated[
    str | None,
    Header(
        alias="Prefer",
        description="`wait=N`: hold the response up to N s (capped) and answer 200 with the finished work",
        examples=["wait=60"],
    ),
]


def require_queue_room(
    request: Request, services: ServicesDep, session: SessionDep, owner: CurrentOwner
) -> None:
    """429 + Retry-After when the caller has too many unfinished jobs; runs before the body is read. Its
    connection goes back to the pool at once: the submission takes its own, and a request holding two while
    parallel ones wait for any exhausts the pool (seen as 500s under 25 parallel uploads on SQLite)."""
    key = request.headers.get("idempotency-key")
    try:
        refuse_when_queue_full(session, owner.id, key, services.settings)
    finally:
        release_connection(session)


def replay_response(stored: StoredResponse) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    if stored.location:
        headers["Location"] = stored.location
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


def _represent(base_url: str, services: Services) -> Callable[[Session, Job], tuple[dict[str, Any], str]]:
    """The resource a creating request answers with: the model for a training, else the job."""

    def represent(session: Session, job: Job) -> tuple[dict[str, Any], str]:
        if job.kind == JobKind.TRAIN:
            model = session.get_one(Model, job.model_id)
            session.refresh(model, ["train_job"])  # the view of the job just flushed
            return model_read(
                model,
                services.storage,
                base_url,
                services.settings.max_sr_output_pixels,
                model_queue_position(session, model),
            ).model_dump(mode="json"), f"/v1/models/{model.id}"
        body = job_read(session, services.storage, job, base_url).model_dump(mode="json")
        return body, f"/v1/jobs/{job.id}"

    return represent


async def create(services: Services, request: Request, work: JobRequest, prefer: str | None) -> JSONResponse:
    """Submit the work; answer 202 with the resource, or 200 when it ended within `Prefer: wait=N`."""
    base_url = str(request.base_url)
    represent = _represent(base_url, services)
    submitted = await run_in_threadpool(submit, services, work, represent)
    if submitted.replay is not None:
        return replay_response(submitted.replay)
    assert submitted.job_id is not None
    job_id = submitted.job_id
    wait_s = requested_wait(prefer, services.settings.prefer_wait_max_s)
    watch = request.app.state.job_watch
    done = await wait_until_final(services.db, watch, job_id, wait_s) if wait_s > 0 else False

    def render() -> tuple[dict[str, Any], str]:
        with services.db.read() as session:
            return represent(session, session.get_one(Job, job_id))

    body, location = await run_in_threadpool(render)
    headers = {"Location": location}
    if wait_s > 0:
        headers["Preference-Applied"] = f"wait={wait_s:g}"
    return JSONResponse(body, status_code=200 if done else 202, headers=headers)
