"""`Annotated` dependency aliases: services, a session per request, the caller, and load-or-404 resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from core import keys, service
from core.models import Job, Model, Owner
from core.services import Services

# Dependencies that do no I/O are `async def`: a plain `def` costs a hop to the threadpool and back on every
# request (measured with bench/wrk_load.py), and under load a wait for a free thread.


async def get_services(request: Request) -> Services:
    """Built once by the app factory."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[Session]:
    """Creating a session does no I/O, nor does closing this one (autocommit: nothing to roll back)."""
    with services.db.autocommit_read() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def release_connection(session: Session) -> None:
    """End the read-only transaction a dependency opened, so its pooled connection goes back at once instead
    of being held for the rest of the request (an async route awaiting an upload, a request queued for a
    threadpool thread). Under load, requests holding every connection while waiting for threads, and threads
    waiting for connections, starve each other until the pool's timeout. Loaded objects stay usable
    (expire_on_commit=False)."""
    if not session.new and not session.dirty and not session.deleted:
        session.commit()


_bearer = HTTPBearer(
    auto_error=False, description="an API key from `python -m core.keys create --owner NAME`"
)


def get_current_owner(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Owner:
    owner = keys.owner_for_key(session, credentials.credentials) if credentials else None
    release_connection(session)
    if owner is None:
        raise HTTPException(
            401, "send `Authorization: Bearer <api key>`", headers={"WWW-Authenticate": "Bearer"}
        )
    return owner


CurrentOwner = Annotated[Owner, Depends(get_current_owner)]

ModelId = Annotated[str, Path(max_length=40, examples=["mdl_0193a1b2c3d4e5f60718293a4b5c"])]
JobId = Annotated[str, Path(max_length=40, examples=["job_0193a1b2c3d4e5f60718293a4b5c"])]


def get_model(model_id: ModelId, session: SessionDep, owner: CurrentOwner) -> Model:
    model = service.get_model(session, owner.id, model_id)
    release_connection(session)
    return model


def get_job(job_id: JobId, session: SessionDep, owner: CurrentOwner) -> Job:
    job = service.get_job(session, owner.id, job_id)
    release_connection(session)
    return job


ModelDep = Annotated[Model, Depends(get_model)]
JobDep = Annotated[Job, Depends(get_job)]
