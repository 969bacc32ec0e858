"""Small contract fixes: a made-up `after` cursor is a 422 on every list that pages by id, a 405 says which
methods the path takes, `/readyz`'s 503 carries Retry-After; and the storage write deadline: a create against
a storage that never answers is a 503 within the deadline and leaves nothing (the fault test does the same
through a real silent S3 endpoint)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from core.infra import StillUnavailable
from core.models import Job, Model
from core.storage import DeadlineStorage
from tests.api.test_api_models import create

PROBLEM = "application/problem+json"


def assert_bad_cursor(response: Any) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"] == ["query", "after"]


def test_a_made_up_after_cursor_is_a_422_on_every_list(client: Any, caller: Any) -> None:
    model = create(client, caller).json()
    lists = {
        "/v1/models": "mdl",
        "/v1/jobs": "job",
        f"/v1/models/{model['id']}/samples": "smp",
    }
    for path, prefix in lists.items():
        for made_up in ("abc", "0", "zzzz", f"{prefix}_123", f"{prefix}_{'g' * 28}"):
            assert_bad_cursor(client.get(path, params={"after": made_up}, headers=caller.headers))
        other_prefix = "job" if prefix != "job" else "mdl"
        assert_bad_cursor(
            client.get(
                path, params={"after": model["id"].replace("mdl", other_prefix)}, headers=caller.headers
            )
        )
    # A cursor of the right kind still pages (the one the service gave, or an id deleted since).
    page = client.get("/v1/models", params={"after": "mdl_" + "f" * 28}, headers=caller.headers)
    assert page.status_code == 200 and [m["id"] for m in page.json()["data"]] == [model["id"]]
    jobs = client.get("/v1/jobs", params={"after": "job_" + "f" * 28}, headers=caller.headers)
    assert jobs.status_code == 200 and jobs.json()["data"][0]["id"] == model["train_job_id"]
    assert_bad_cursor(
        client.get(f"/v1/jobs/{model['train_job_id']}/events", params={"after": "x"}, headers=caller.headers)
    )


def test_405_names_the_methods_the_path_takes(client: Any, caller: Any) -> None:
    wrong = client.put("/v1/models", headers=caller.headers)
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM
    assert {m.strip() for m in wrong.headers["allow"].split(",")} >= {"GET", "POST"}
    document = client.get("/openapi.json").json()
    assert "405" in document["paths"]["/v1/models"]["get"]["responses"]


class SilentStorage:
    """A storage whose puts wait until released (a storage that accepts and does not answer), then
    succeed; it records what it holds."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.objects: dict[str, bytes] = {}
        self.puts_done = threading.Event()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.release.wait(30)
        self.objects[key] = data
        self.puts_done.set()

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def delete_prefix(self, prefix: str) -> int:
        keys = [k for k in self.objects if k.startswith(prefix)]
        for key in keys:
            del self.objects[key]
        return len(keys)

    def check(self) -> None:
        if not self.release.is_set():
            time.sleep(5)  # readyz gives up first

    def presigned_url(self, key: str) -> str | None:
        return None


def wait_until_undone(silent: SilentStorage, timeout_s: float = 5.0) -> None:
    """The late write landed (puts_done); its undo (a delete from the write's own thread) follows: wait for it."""
    assert silent.puts_done.wait(timeout_s)
    deadline = time.monotonic() + timeout_s
    while silent.objects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert silent.objects == {}, "the late write was not undone"


def test_a_write_past_its_deadline_is_unavailable_and_undone_when_it_lands_late() -> None:
    silent = SilentStorage()
    storage = DeadlineStorage(silent, deadline_s=0.3)  # type: ignore[arg-type]
    began = time.monotonic()
    with pytest.raises(StillUnavailable) as raised:
        storage.put("models/mdl_" + "0" * 28 + "/input.png", b"png", "image/png")
    # without the deadline the put would wait for SilentStorage's 30 s; the deadline + 3 s bound allows for a
    # loaded machine and stays far below that
    assert raised.value.dependency == "storage" and time.monotonic() - began < 0.3 + 3.0
    silent.release.set()
    wait_until_undone(silent)
    storage.put("models/mdl_" + "1" * 28 + "/input.png", b"png", "image/png")  # a prompt one stays
    assert list(silent.objects) == ["models/mdl_" + "1" * 28 + "/input.png"]


def test_a_create_against_silent_storage_is_a_503_in_time_and_creates_nothing(
    make_client: Any, caller: Any, db: Any, queue: Any
) -> None:
    silent = SilentStorage()
    client = make_client(storage=silent, storage_write_deadline_s=0.5)
    began = time.monotonic()
    response = create(client, caller)
    took = time.monotonic() - began
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0 and response.json()["type"].endswith("/unavailable")
    assert took < 0.5 + 3.0, took  # the deadline + 3 s for a loaded machine; without it: SilentStorage's 30 s
    ready = client.get("/readyz")
    assert ready.status_code == 503 and int(ready.headers["retry-after"]) > 0
    silent.release.set()
    wait_until_undone(silent)
    assert queue.jobs == []
    with db.read() as session:
        assert session.scalar(select(func.count()).where(Model.owner_id == caller.owner_id)) == 0
        assert session.scalar(select(func.count()).where(Job.owner_id == caller.owner_id)) == 0
