"""Idempotency-Key records (after Stripe and the IETF draft): scoped to the owner, remembering a hash of the
request and the response it got. Same key + same request -> the stored response; different request -> error."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.errors import IdempotencyConflict
from core.models import IdempotencyRecord, utcnow

MAX_KEY_CHARS = 255


def forget(session: Session, owner_id: str, key: str) -> None:
    """Drop a remembered response (in the caller's transaction): a request that ended in an error after its
    commit (the broker was down) must not replay its 202 to the client's retry."""
    session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
    )


def request_hash(method: str, path: str, fields: dict[str, Any], blob_sha256: str = "") -> str:
    canonical = json.dumps([method.upper(), path, fields, blob_sha256], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_replay(
    session: Session, owner_id: str, key: str, req_hash: str, ttl_s: int
) -> IdempotencyRecord | None:
    """The stored response for this key, None if the key is new (or expired), or IdempotencyConflict."""
    record = session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
    )
    if record is None:
        return None
    if record.created_at < utcnow() - dt.timedelta(seconds=ttl_s):
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
        session.commit()
        return None
    if record.request_hash != req_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request; use a new key for a new request"
        )
    return record


def remember(
    session: Session,
    owner_id: str,
    key: str,
    req_hash: str,
    status_code: int,
    body: dict[str, Any],
    location: str | None,
) -> None:
    """Add the record to the caller's transaction: it commits with the resource it describes, or not at all.
    A concurrent twin request fails on the unique (owner_id, key) constraint and replays this one."""
    session.add(
        IdempotencyRecord(
            owner_id=owner_id,
            key=key,
            request_hash=req_hash,
            status_code=status_code,
            response_body=body,
            location=location,
            created_at=utcnow(),
        )
    )
