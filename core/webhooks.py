"""Webhooks after the Standard Webhooks spec (standardwebhooks.com).

Outbox: `enqueue_job_event` writes a WebhookDelivery row in the caller's transaction (the one that changes the
job's state), so a crash between "succeeded" and "sent" cannot lose the webhook. A `core.unit_of_work.UnitOfWork`
sends new rows right after its commit. Delivery happens later, by a
Celery task or the embedded worker, with growing gaps over more than a day; every attempt is recorded.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import re
import secrets
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from core.db import Database
from core.ids import new_id
from core.models import DeliveryState, Job, JobKind, Model, Owner, WebhookAttempt, WebhookDelivery, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)

MODEL_EVENTS = ("model.succeeded", "model.failed", "model.canceled")
JOB_EVENTS = ("job.succeeded", "job.failed", "job.canceled")
ALL_EVENTS = MODEL_EVENTS + JOB_EVENTS
LEASE_S = 60  # a claimed delivery is not handed to another sender for this long


# --- signing -------------------------------------------------------------------------------------------


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes: the secret format Standard Webhooks libraries read."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`, made by the `standardwebhooks` package
    (the reference implementation receivers verify with). Bodies are JSON, so UTF-8 text."""
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return Webhook(secret).sign(msg_id, when, body.decode())


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "consingan-webhooks/1",
    }


# --- URL policy: no loopback/private/link-local/metadata targets, also after DNS resolution ---------------


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return not address.is_global or address.is_multicast


# A DNS label: letters, digits, hyphens (underscores appear in real names too), not starting or ending in "-".
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# Special-use names (RFC 6761) that are local by definition: refused unless private targets are allowed.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


def check_url(url: str, allow_private: bool) -> None:
    """Raise ValueError for URLs we refuse to call: not http(s), malformed (spaces or control characters, an
    invalid host name or port), a name that can never resolve (`.invalid`), or, unless `allow_private`,
    a local name or a loopback/private literal. Names are checked again after resolution by `resolve_public`
    (at creation and before every send)."""
    if any(char.isspace() or not char.isprintable() for char in url):
        # urlsplit silently drops tabs, CR and LF: check the text that would be stored, not the parse
        raise ValueError("webhook_url must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook_url must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError("webhook_url must not contain credentials")
    try:
        parts.port  # noqa: B018  (parsing it is the check)
    except ValueError as e:
        raise ValueError(f"webhook_url has an invalid port: {e}") from e
    host = parts.hostname.lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        _check_host_name(host, allow_private)
        return
    if not allow_private and _refused(address):
        raise ValueError("webhook_url must not point at a private, loopback or link-local address")


def _check_host_name(host: str, allow_private: bool) -> None:
    name = host.removesuffix(".")  # "example.com." is example.com, fully qualified
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if not ascii_name or len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"webhook_url's host {host!r} is not a valid host name")
    if labels[-1] == "invalid":
        raise ValueError("webhook_url's host is under .invalid, which never resolves")
    if not allow_private and (ascii_name == "localhost" or ascii_name.endswith(_LOCAL_SUFFIXES)):
        raise ValueError("webhook_url must not point at a local host name")


class HostNotResolved(Exception):
    """The webhook host does not resolve now: not proof of anything (DNS may be down); retried later."""


def resolve_public(url: str, allow_private: bool) -> str | None:
    """Resolve the URL's host and refuse it (ValueError) when ANY address it resolves to is loopback, private,
    link-local (169.254.169.254, the cloud metadata service), multicast or otherwise not global. Returns the
    address to connect to (pinned: a second lookup could answer differently, DNS rebinding), or None when
    private targets are allowed (tests, local development) and the URL is used as is."""
    check_url(url, allow_private)
    if allow_private:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise HostNotResolved(f"webhook_url host {host!r} does not resolve") from e
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses or any(_refused(a) for a in addresses):
        raise ValueError("webhook_url resolves to a private, loopback or link-local address")
    return str(addresses[0])


def pinned_request(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, extra headers, httpx extensions) that connect to `address` while speaking to the URL's host:
    the Host header and TLS SNI/certificate check keep the name."""
    if address is None:
        return url, {}, {}
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    headers = {"host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), headers, extensions


# --- outbox ----------------------------------------------------------------------------------------------


def event_type_for(job: Job) -> str:
    return f"{'model' if job.kind == JobKind.TRAIN else 'job'}.{job.state}"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def enqueue_job_event(session: Session, job: Job) -> str | None:
    """Write the outbox row announcing `job`'s final state, if its model asked for that event."""
    model = session.get(Model, job.model_id)
    event_type = event_type_for(job)
    if model is None or not model.webhook_url or event_type not in (model.webhook_events or []):
        return None
    now = utcnow()
    data: dict[str, Any] = {"model_id": model.id, "job_id": job.id, "kind": job.kind, "state": job.state}
    if job.error:
        data["error"] = job.error
    body = json.dumps({"type": event_type, "timestamp": _iso(now), "data": data}, separators=(",", ":"))
    delivery = WebhookDelivery(
        id=new_id("msg"),
        owner_id=job.owner_id,
        model_id=model.id,
        job_id=job.id,
        event_type=event_type,
        url=model.webhook_url,
        payload=body,
        state=DeliveryState.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)  # a UnitOfWork sends it after the commit; the periodic sweep catches the rest
    return delivery.id


def due_delivery_ids(session: Session, limit: int = 100) -> list[str]:
    query = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.state == DeliveryState.PENDING.value, WebhookDelivery.next_attempt_at <= utcnow()
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(query))


# --- delivery --------------------------------------------------------------------------------------------


def _claim(session: Session, delivery_id: str) -> bool:
    """Take a due delivery for LEASE_S seconds; a second sender (sweep + direct task) gets False."""
    now = utcnow()
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.state == DeliveryState.PENDING.value,
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + dt.timedelta(seconds=LEASE_S)),
        execution_options={"synchronize_session": False},
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def _post(
    client: httpx.Client, delivery: WebhookDelivery, secret: str, allow_private: bool = True
) -> tuple[int | None, str | None]:
    body = delivery.payload.encode()
    headers = signed_headers(secret, delivery.id, int(time.time()), body)
    try:
        address = resolve_public(delivery.url, allow_private)
    except ValueError as e:
        return None, f"refused: {e}"
    except HostNotResolved as e:
        return None, str(e)  # retried on the schedule
    url, pin_headers, extensions = pinned_request(delivery.url, address)
    try:
        response = client.post(url, content=body, headers={**headers, **pin_headers}, extensions=extensions)
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {e}"[:500]
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return response.status_code, error


def _record_attempt(
    delivery: WebhookDelivery,
    status: int | None,
    error: str | None,
    duration_ms: int,
    schedule: tuple[int, ...],
) -> WebhookAttempt:
    now = utcnow()
    delivery.attempts += 1
    delivery.last_status_code = status
    delivery.last_error = error
    if error is None:
        delivery.state = DeliveryState.DELIVERED.value
        delivery.finished_at = now
    elif status == 410 or delivery.attempts >= len(schedule) or error.startswith("refused:"):
        # 410 Gone: the receiver asked us to stop; refused: the URL now resolves to a private address.
        delivery.state = DeliveryState.FAILED.value
        delivery.finished_at = now
    else:
        delivery.next_attempt_at = now + dt.timedelta(seconds=schedule[delivery.attempts])
    return WebhookAttempt(
        delivery_id=delivery.id,
        number=delivery.attempts,
        attempted_at=now,
        status_code=status,
        error=error,
        duration_ms=duration_ms,
    )


def deliver(
    db: Database, settings: Settings, delivery_id: str, client: httpx.Client | None = None
) -> bool | None:
    """One attempt. True delivered, False failed (retried later unless out of attempts), None not due/claimed.
    No transaction is held open during the HTTP call."""
    with db.transaction() as session:
        if not _claim(session, delivery_id):
            return None
    with db.transaction() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        owner = session.get(Owner, delivery.owner_id)
        assert owner is not None
        secret = owner.webhook_secret
        session.expunge(delivery)
    started = time.monotonic()
    own_client = client is None
    http = client or httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
    try:
        status, error = _post(http, delivery, secret, settings.allow_private_webhook_urls)
    finally:
        if own_client:
            http.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    with db.transaction() as session:
        delivery = session.merge(delivery)
        session.add(_record_attempt(delivery, status, error, duration_ms, settings.webhook_schedule_s))
    log.info(
        "webhook attempt",
        extra={
            "delivery_id": delivery_id,
            "model_id": delivery.model_id,
            "job_id": delivery.job_id,
            "status_code": status,
            "error": error,
            "attempt": delivery.attempts,
        },
    )
    return error is None
