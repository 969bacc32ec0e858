"""Fixtures for the service tests (core, api, worker, e2e), loaded by tests/conftest.py.

Real dependencies: a Postgres database created for this run (Alembic migrations applied, dropped at the end),
Redis, and moto's S3 server on loopback. With CI=true a missing Postgres or Redis FAILS the tests; elsewhere
they are skipped with the reason. Tests isolate by owner (each test makes its own), not by rollback: the API
and the worker use their own sessions, as in production.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "CONSINGAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@localhost:5432/postgres"
)
REDIS_URL = os.environ.get("CONSINGAN_TEST_REDIS_URL", "redis://localhost:6379/0")
RUN_ID = secrets.token_hex(4)


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the service tests need it)", pytrace=False)
    pytest.skip(reason)


# --- real dependencies ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from core.migrate import upgrade_to_head

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as e:
        admin.dispose()
        unavailable(f"Postgres is not reachable at {PG_ADMIN_URL}: {str(e).splitlines()[0]}")
    name = f"consingan_test_{RUN_ID}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade_to_head(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {e}")
    return REDIS_URL


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


# --- settings and services --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(pg_url: str, s3_endpoint: str) -> Any:
    from core.settings import get_settings

    return get_settings(
        database_url=pg_url,
        queue_mode="celery",
        broker_url=REDIS_URL,
        gpu_queue=f"gpu-test-{RUN_ID}",  # other test runs may share this Redis
        interactive_queue=f"gpu-interactive-test-{RUN_ID}",
        webhooks_queue=f"webhooks-test-{RUN_ID}",
        storage_backend="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=f"consingan-test-{RUN_ID}",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        allow_private_webhook_urls=True,
        progress_interval_s=0.2,
        cancel_poll_interval_s=0.2,
        webhook_timeout_s=5.0,
        device="cpu",
        log_format="text",
    )


def settings_env(settings: Any) -> dict[str, str]:
    """The settings as CONSINGAN_* variables, for subprocesses (a Celery worker, the no-torch check)."""
    import json

    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"CONSINGAN_{name.upper()}"] = json.dumps(list(value)) if isinstance(value, tuple) else str(value)
    return env


@pytest.fixture(scope="session")
def db(settings: Any) -> Iterator[Any]:
    from core.db import Database

    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def storage(settings: Any) -> Any:
    from core.storage import S3Storage

    s3 = S3Storage(settings)
    s3.ensure_bucket()
    return s3


def object_keys(storage: Any, prefix: str = "") -> list[str]:
    """Every key in the test bucket (or the local folder) under `prefix`."""
    if hasattr(storage, "client"):
        pages = storage.client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    root = storage.root
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and str(p.relative_to(root)).startswith(prefix)
    ]


def cancel_leftover_jobs(db: Any) -> int:
    """Earlier tests leave jobs `queued` (their queue was a RecordingQueue) or `running` (a thread's job) in the
    shared database. A real worker's reaper would rightly take them for stranded or abandoned and run them:
    tests that start real workers end them first."""
    from sqlalchemy import update

    from core.models import Job, JobState, utcnow

    with db.transaction() as session:
        result = session.execute(
            update(Job)
            .where(Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
            .values(state=JobState.CANCELED.value, finished_at=utcnow(), error="left over by an earlier test")
        )
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class RecordingQueue:
    """The broker boundary, for tests that are not about the broker."""

    jobs: list[tuple[str, str]] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    lanes: dict[str, str] = field(default_factory=dict)  # job id -> the lane it was sent to
    priorities: dict[str, int] = field(
        default_factory=dict
    )  # job id -> the fair-share priority it was sent with

    def send_job(self, job_id: str, kind: Any, lane: str, priority: int = 0) -> None:
        self.jobs.append((job_id, str(kind.value if hasattr(kind, "value") else kind)))
        self.lanes[job_id] = lane
        self.priorities[job_id] = priority

    def send_webhook(self, delivery_id: str) -> None:
        self.webhooks.append(delivery_id)

    def check(self) -> None:
        pass


def submit_job(
    db: Any,
    storage: Any,
    settings: Any,
    kind: Any,
    owner_id: str,
    params: dict[str, Any],
    *,
    model: Any = None,
    image: bytes | None = None,
    uploads: dict[str, bytes] | None = None,
    webhook_url: str | None = None,
    webhook_events: tuple[str, ...] = (),
    queue: Any = None,
) -> Any:
    """Submit work through the real use-case (core.submit), as a route would; returns the new job row."""
    from core.images import validate_image
    from core.models import Job
    from core.services import Services
    from core.submit import JobRequest, NewModel, submit

    limits = {"max_pixels": 40_000_000, "max_side": 8192, "min_side": 16}
    new_model = None
    if image is not None:
        new_model = NewModel(validate_image(image, **limits), webhook_url, webhook_events)
    request = JobRequest(
        kind=kind,
        owner_id=owner_id,
        path="/test",
        params=params,
        model=model,
        new_model=new_model,
        uploads={name: validate_image(data, **limits) for name, data in (uploads or {}).items()},
    )
    services = Services(settings, db, storage, queue if queue is not None else RecordingQueue())
    submitted = submit(services, request, lambda session, job: ({}, ""))
    with db.read() as session:
        return session.get_one(Job, submitted.job_id)


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@dataclass
class Caller:
    owner_id: str
    name: str
    key: str
    webhook_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def make_caller(db: Any) -> Any:
    from core.keys import create_key, get_or_create_owner

    def make(name: str | None = None) -> Caller:
        name = name or f"owner-{secrets.token_hex(6)}"
        with db.transaction() as session:
            owner = get_or_create_owner(session, name)
            key = create_key(session, owner)
            caller = Caller(owner.id, name, key, owner.webhook_secret)
        return caller

    return make


@pytest.fixture
def caller(make_caller: Any) -> Caller:
    return make_caller()


@pytest.fixture
def make_client(settings: Any, storage: Any, queue: RecordingQueue) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app

    clients: list[Any] = []

    def make(**overrides: Any) -> Any:
        app_storage = overrides.pop("storage", storage)
        app_queue = overrides.pop("queue", queue)
        app = create_app(settings.model_copy(update=overrides), storage=app_storage, queue=app_queue)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any) -> Any:
    return make_client()


# --- test images --------------------------------------------------------------------------------------------


def scene_image(width: int = 48, height: int = 40, fmt: str = "PNG") -> bytes:
    """A small gradient with a few shapes, so training has structure to learn."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height))
    pixels = image.load()
    assert pixels is not None
    for x in range(width):
        for y in range(height):
            pixels[x, y] = (x * 255 // width, y * 255 // height, 128)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 5, height // 4, width // 2, height * 3 // 4), fill=(250, 220, 30))
    draw.rectangle((width * 3 // 5, height // 8, width * 9 // 10, height // 2), fill=(20, 160, 60))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: a decompression-bomb shaped header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def png_of_zeros(width: int, height: int) -> bytes:
    """A REAL decompression bomb: a valid PNG of zero rows, tiny on disk, width*height*3 bytes decoded."""
    raw = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    idat = b"".join(raw.compress(row) for _ in range(height)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


TINY_TRAINING = {"preset": "quick", "train_stages": 2, "iters_per_stage": 3, "max_size": 32, "min_size": 16}


# --- a real HTTP receiver for webhooks ------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """http.server on 127.0.0.1 in a thread; answers with the queued statuses, then 204."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, count: int = 1, timeout_s: float = 30.0) -> list[Received]:
        import time

        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"expected {count} webhook(s), got {len(self.received)}"
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()
