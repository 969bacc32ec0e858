"""Fault test: object storage that accepts connections and never answers (a blackhole) while a model is
created. The API must answer 503 + Retry-After within `storage_write_deadline_s` and create nothing: no model
row, no job row, no task message, and no object, not even from the abandoned upload that completes late, once
the storage answers again (the proxy resets the swallowed connection, botocore retries and the put succeeds
after the client was told nothing exists: the late write deletes what it wrote).

A real API (uvicorn) in front of the shared test Postgres, a real S3 server behind the switchable proxy, and
the shared Redis with a queue of this test's own (so "no task message" is a length of 0).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from core.models import Job, Model
from tests.faults.harness import ApiServer, SwitchableProxy, wait_for
from tests.service_fixtures import REDIS_URL, RUN_ID, TINY_TRAINING, scene_image

pytestmark = [pytest.mark.faults]

DEADLINE_S = 1.5
READ_TIMEOUT_S = 3.0  # longer than the deadline: without the deadline the create would wait for botocore


@pytest.fixture
def blackholed_api(
    settings: Any, s3_endpoint: str, storage: Any
) -> Iterator[tuple[ApiServer, SwitchableProxy, Any]]:
    proxy = SwitchableProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    api_settings = settings.model_copy(
        update={
            "s3_endpoint_url": proxy.url,
            "gpu_queue": f"gpu-deadline-{RUN_ID}",
            "storage_write_deadline_s": DEADLINE_S,
            "storage_connect_timeout_s": 1.0,
            "storage_read_timeout_s": READ_TIMEOUT_S,
            "storage_max_attempts": 3,
        }
    )
    api = ApiServer(api_settings)
    try:
        yield api, proxy, api_settings
    finally:
        api.stop()
        proxy.close()


def model_prefixes(storage: Any) -> set[str]:
    return {key.split("/")[1] for key, _ in storage.list_objects("models/")}


def test_a_create_against_silent_storage_answers_503_in_time_and_leaves_nothing(
    blackholed_api: tuple[ApiServer, SwitchableProxy, Any], storage: Any, db: Any, make_caller: Any
) -> None:
    api, proxy, api_settings = blackholed_api
    caller = make_caller()
    puts_after_restore: list[bytes] = []
    deleted_after_restore: list[bytes] = []  # the paths of DELETE requests
    restored = threading.Event()

    def path_of(chunk: bytes) -> bytes:  # "PUT /bucket/models/... HTTP/1.1" -> "/bucket/models/..."
        return chunk.split(b" ", 2)[1].split(b"?", 1)[0]

    def watch(chunk: bytes) -> None:
        if restored.is_set() and chunk.startswith(b"PUT /"):
            puts_after_restore.append(chunk[:200])
        if restored.is_set() and chunk.startswith(b"DELETE /"):
            deleted_after_restore.append(path_of(chunk))

    def undone() -> bool:
        put_paths = {path_of(chunk) for chunk in puts_after_restore}
        return bool(put_paths & set(deleted_after_restore)) and model_prefixes(storage) == before

    proxy.on_upstream = watch
    before = model_prefixes(storage)
    with httpx.Client(base_url=api.url, headers=caller.headers, timeout=30) as client:
        assert client.get("/readyz").status_code == 200
        proxy.blackhole()
        data = {name: str(value) for name, value in TINY_TRAINING.items()}
        files = {"image": ("scene.png", scene_image(48, 40), "image/png")}
        began = time.monotonic()
        response = client.post("/v1/models", data=data, files=files)
        took = time.monotonic() - began
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/unavailable")
        assert int(response.headers["retry-after"]) > 0
        # Without the deadline the create waits for botocore: a put with these settings against a blackhole
        # takes ~16 s (measured: 4 connections of a 3 s read timeout, plus backoff). The deadline + 3 s allows
        # for a loaded machine and stays far below that.
        assert took < DEADLINE_S + 3.0, f"the create took {took:.1f} s (deadline {DEADLINE_S} s)"

        ready = client.get("/readyz")
        assert ready.status_code == 503 and int(ready.headers["retry-after"]) > 0, ready.headers
        assert ready.json()["checks"]["storage"].startswith("unavailable")

        # The storage answers again: botocore's retry of the abandoned put goes through, late.
        restored.set()
        proxy.restore()
        wait_for(lambda: bool(puts_after_restore), 3 * READ_TIMEOUT_S, "the abandoned upload retried")
        # its undo, a DELETE of the key it put, follows the put's answer: wait for that DELETE and the object
        # gone (no object alone could also mean that the late put has not landed yet)
        wait_for(undone, 10, "the abandoned upload undone (a DELETE of its key sent, the object gone)")

    assert model_prefixes(storage) == before, "an object was left by the abandoned upload"
    with db.read() as session:
        assert session.scalar(select(func.count()).where(Model.owner_id == caller.owner_id)) == 0
        assert session.scalar(select(func.count()).where(Job.owner_id == caller.owner_id)) == 0
    broker = redis.Redis.from_url(os.environ.get("CONSINGAN_TEST_REDIS_URL", REDIS_URL))
    try:
        assert broker.llen(api_settings.gpu_queue) == 0
    finally:
        broker.close()
