"""Pieces shared by the routers: idempotent creation, waiting, and building the 202/200 response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentOwner, Services, ServicesDep, SessionDep
from api.waiting import requested_wait, wait_until_final
from core import idempotency, service
from core.errors import UnsupportedMediaType
from core.models import IdempotencyRecord

T = TypeVar("T")


def require_multipart(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            f"send multipart/form-data with an `image` file, not {content_type or 'no body'}"
        )


def require_queue_room(
    request: Request, services: ServicesDep, session: SessionDep, owner: CurrentOwner
) -> None:
    """429 + Retry-After when the caller has too many unfinished jobs; runs before the body is read.
    A retry with a known Idempotency-Key passes: it gets its stored response (or the key conflict)."""
    settings = services.settings
    key = request.headers.get("idempotency-key")
    if key and session.scalar(
        select(IdempotencyRecord.id).where(
            IdempotencyRecord.owner_id == owner.id, IdempotencyRecord.key == key
        )
    ):
        return
    service.check_queue_room(
        session, owner.id, settings.max_queued_jobs_per_owner, settings.queue_full_retry_after_s
    )


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.lower().startswith("application/json"):
        raise UnsupportedMediaType(f"send application/json, not {content_type}")


def replay_response(record: IdempotencyRecord) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    if record.location:
        headers["Location"] = record.location
    return JSONResponse(record.response_body, status_code=record.status_code, headers=headers)


class Idempotent:
    """Remembers the response of a creating request under (owner, Idempotency-Key) in its own transaction."""

    def __init__(
        self, services: Services, session: Session, owner_id: str, key: str | None, req_hash: str
    ) -> None:
        self.services, self.session, self.owner_id, self.key, self.req_hash = (
            services,
            session,
            owner_id,
            key,
            req_hash,
        )

    def replay(self) -> JSONResponse | None:
        if not self.key:
            return None
        ttl = self.services.settings.idempotency_ttl_s
        record = idempotency.find_replay(self.session, self.owner_id, self.key, self.req_hash, ttl)
        return replay_response(record) if record else None

    def remember(self, body: dict[str, Any], location: str) -> None:
        if self.key:
            idempotency.remember(self.session, self.owner_id, self.key, self.req_hash, 202, body, location)

    async def create(self, create: Callable[[], T]) -> tuple[T | None, JSONResponse | None]:
        """Run `create` in a thread: (its result, None), or (None, the replay) when a concurrent twin request
        with the same key committed first (the unique constraint on (owner, key) decides)."""
        try:
            return await run_in_threadpool(create), None
        except IntegrityError:
            self.session.rollback()
            replay = await run_in_threadpool(self.replay)
            if replay is None:
                raise
            return None, replay


async def accepted_or_done(
    services: Services, job_id: str, prefer: str | None, render: Callable[[], dict[str, Any]], location: str
) -> JSONResponse:
    """202 with the resource; after `Prefer: wait=N`, 200 when the job ended within N seconds."""
    wait_s = requested_wait(prefer, services.settings.prefer_wait_max_s)
    done = await wait_until_final(services.db, job_id, wait_s) if wait_s > 0 else False
    headers = {"Location": location}
    if wait_s > 0:
        headers["Preference-Applied"] = f"wait={wait_s:g}"
    body = await run_in_threadpool(render)
    return JSONResponse(body, status_code=200 if done else 202, headers=headers)
