"""`GET /v1/jobs/{id}/events` as Server-Sent Events (`Accept: text/event-stream`).

What the stream carries, in order:
- every row of the job's event log after the cursor, as `id: <event id>` / `event: <type>` /
  `data: <the JobEventRead JSON>`: the ids are the paginated form's cursor, so a client that reconnects with
  `Last-Event-ID` misses nothing and sees nothing twice;
- `event: job` / `data: <the JobRead JSON>` (no id) whenever the job itself changed: state, progress, queue
  position; a reconnect gets the current one first;
- `: heartbeat` comment lines every `sse_heartbeat_s`, so proxies keep an idle stream open.
It ends after the terminal event (`succeeded`, `failed`, `canceled`). Between reads it sleeps until the job's
change is notified (`api.job_watch`, the same wake as `Prefer: wait`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from api.job_watch import JobWatch
from api.render import event_read, job_read
from core import service
from core.models import FINAL_STATES, Job, JobState
from core.services import Services

MEDIA_TYPE = "text/event-stream"
BATCH = 500
RETRY_MS = 2000  # how long a browser's EventSource waits before it reconnects


def wants_stream(accept: str | None) -> bool:
    return MEDIA_TYPE in (accept or "").lower()


def message(data: str, event: str | None = None, id_: int | None = None) -> bytes:
    lines = []
    if id_ is not None:
        lines.append(f"id: {id_}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


def _read(
    services: Services, job_id: str, after: int | None, base_url: str
) -> tuple[list[tuple[int, str, str]], dict[str, Any] | None, bool]:
    """The job (read FIRST: a final state commits with its terminal event, so the events read after it
    include that event), then up to BATCH events after the cursor. Returns (events as (id, type, JSON)),
    the job's JSON, and whether this read holds everything up to the end. A job deleted meanwhile (its model
    was) ends the stream: (no events, None, True)."""
    with services.db.read() as session:
        job = session.get(Job, job_id)
        if job is None:
            return [], None, True
        snapshot = job_read(session, services.storage, job, base_url).model_dump(mode="json")
        events, _ = service.list_job_events(session, job, BATCH, after)
        rows = [
            (e.id, e.type, event_read(e, job, services.storage, base_url).model_dump_json()) for e in events
        ]
    ended = JobState(snapshot["state"]) in FINAL_STATES and len(rows) < BATCH
    return rows, snapshot, ended


async def job_events(
    services: Services, watch: JobWatch, job_id: str, after: int | None, base_url: str
) -> AsyncIterator[bytes]:
    heartbeat_s = services.settings.sse_heartbeat_s
    yield f"retry: {RETRY_MS}\n\n".encode()
    await watch.start()
    shown: dict[str, Any] | None = None
    cursor = after
    with watch.watching(job_id) as doorbell:
        quiet_since = time.monotonic()
        while True:
            rows, snapshot, ended = await run_in_threadpool(_read, services, job_id, cursor, base_url)
            sent = False
            for event_id, type_, data in rows:
                yield message(data, type_, event_id)
                cursor, sent = event_id, True
            if snapshot is not None and snapshot != shown:
                yield message(json.dumps(snapshot, separators=(",", ":")), "job")
                shown, sent = snapshot, True
            if ended or snapshot is None:
                return
            if sent:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= heartbeat_s:
                yield b": heartbeat\n\n"
                quiet_since = time.monotonic()
            # A queued job's position moves when any job of its lane starts or ends.
            doorbell.any_job = snapshot["state"] == JobState.QUEUED
            until_heartbeat = heartbeat_s - (time.monotonic() - quiet_since)
            await doorbell.wait(min(watch.poll_interval_s, until_heartbeat))
