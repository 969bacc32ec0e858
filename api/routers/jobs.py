"""/v1/jobs: one unit of GPU work (a training, a sample run or a harmonization) and its event log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from api.deps import JobDep, Services, ServicesDep, SessionDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import HarmonizationResultRead, JobEventRead, JobRead, Page, SampleRead
from core import service
from core.models import Job, JobKind, JobState
from core.storage import Storage

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)


def render_job(session: Session, storage: Storage, job: Job, base_url: str) -> JobRead:
    samples, result = None, None
    if job.state == JobState.SUCCEEDED:
        samples = [SampleRead.of(s, storage, base_url) for s in service.job_samples(session, job)]
        if job.kind == JobKind.HARMONIZE:
            result = HarmonizationResultRead.of(job, storage, base_url)
    return JobRead.of(job, samples, result)


def job_body(services: Services, job_id: str, base_url: str) -> dict[str, Any]:
    with services.db.sessions() as session:
        job = session.get_one(Job, job_id)
        return render_job(session, services.storage, job, base_url).model_dump(mode="json")


@router.get(
    "/{job_id}", response_model=JobRead, summary="A job: state, progress, error, and its images when done"
)
def get_job(request: Request, job: JobDep, session: SessionDep, services: ServicesDep) -> JobRead:
    return render_job(session, services.storage, job, str(request.base_url))


@router.get(
    "/{job_id}/events", response_model=Page[JobEventRead], summary="The job's event log, oldest first"
)
def list_events(
    job: JobDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="`next_cursor` of the previous page")
    ] = None,
) -> Page[JobEventRead]:
    events, cursor = service.list_job_events(session, job, limit, after)
    return Page[JobEventRead](data=[JobEventRead.of(e) for e in events], next_cursor=cursor)


@router.post(
    "/{job_id}/cancel",
    response_model=JobRead,
    summary="Cancel a queued or running job",
    responses={409: {"description": "the job already ended"}},
)
def cancel_job(request: Request, job: JobDep, session: SessionDep, services: ServicesDep) -> JobRead:
    job = service.cancel_job(session, job)
    return render_job(session, services.storage, job, str(request.base_url))
