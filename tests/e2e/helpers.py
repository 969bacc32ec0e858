"""What the e2e modules share: waiting for a model or job to finish, training a tiny model through the API, a
free port, and the port the `celery_worker` fixture (tests/e2e/conftest.py) serves its metrics on."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.service_fixtures import scene_image

FINAL = {"succeeded", "failed", "canceled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The `celery_worker` fixture's metrics port: a constant, so a test reads it without asking for anything else.
# The fixture is module-scoped: one worker at a time binds it.
METRICS_PORT = free_port()


def wait_for(
    client: Any, path: str, headers: dict[str, str], log: Path, timeout_s: float = 240
) -> dict[str, Any]:
    """GET `path` until its state is final; fails with the worker log's tail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(path, headers=headers).json()
        if body["state"] in FINAL:
            return body
        time.sleep(0.5)
    pytest.fail(f"{path} did not finish in {timeout_s}s; worker log:\n{log.read_text()[-5000:]}")


def submitted(client: Any, response: Any, caller: Any, log: Path) -> dict[str, Any]:
    """A created model or job, once it succeeded through the worker."""
    assert response.status_code in (200, 202), response.text
    done = wait_for(client, response.headers["location"], caller.headers, log)
    assert done["state"] == "succeeded", done["error"]
    return done


def train_tiny(client: Any, caller: Any, log: Path, **fields: str) -> dict[str, Any]:
    """A 2-stage, 5-iteration, 32 px model of the 48 x 40 scene (`fields` add to or replace those), trained."""
    data = {"preset": "quick", "train_stages": "2", "iters_per_stage": "5", "max_size": "32", **fields}
    response = client.post(
        "/v1/models", headers=caller.headers, data=data,
        files={"image": ("scene.png", scene_image(48, 40), "image/png")},
    )  # fmt: skip
    return submitted(client, response, caller, log)


def post_and_wait(client: Any, caller: Any, path: str, body: dict[str, Any], log: Path) -> dict[str, Any]:
    response = client.post(path, headers={**caller.headers, "Prefer": "wait=60"}, json=body)
    return submitted(client, response, caller, log)
