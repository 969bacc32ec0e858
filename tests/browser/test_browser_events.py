"""The page follows a training over Server-Sent Events, and a queued training says where it stands."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import Stack
from tests.browser.images import landscape
from tests.browser.test_browser_page import PNG_FILE, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LONG = {"preset": "quick", "train_stages": "2", "iters_per_stage": "5000", "max_size": "32", "min_size": "16"}


def create(stack: Stack) -> dict[str, Any]:
    created = stack.api(
        "POST", "/v1/models", data=LONG, files={"image": ("hills.png", landscape(), PNG_FILE)}
    )
    assert created.status_code == 202, created.text
    return dict(created.json())


def test_a_queued_training_shows_how_many_jobs_are_ahead_and_moves_up_live(page: Any, stack: Stack) -> None:
    streams: list[str] = []
    page.on(
        "request",
        lambda r: streams.append(r.url) if r.headers.get("accept") == "text/event-stream" else None,
    )
    busy, waiting, mine = create(stack), create(stack), create(stack)
    try:
        deadline = time.monotonic() + 60
        while stack.api("GET", f"/v1/models/{busy['id']}").json()["state"] != "running":
            assert time.monotonic() < deadline, stack.log_tail()
            time.sleep(0.2)
        assert stack.api("GET", f"/v1/models/{mine['id']}").json()["queue_position"] == 1
        sign_in(page, stack, f"#/models/{mine['id']}")
        progress = page.locator("[data-ref=progress-text]")
        progress.filter(has_text="Queued: 1 job ahead of yours").wait_for()
        # The job ahead leaves the queue: the page moves up without a reload (the stream is woken).
        stack.api("POST", f"/v1/models/{waiting['id']}/cancel")
        progress.filter(has_text="Queued: next in line").wait_for(timeout=15_000)
        assert any(f"/v1/jobs/{mine['train_job_id']}/events" in url for url in streams), streams
        # The running one ends: mine starts, and the page shows its progress from the stream.
        stack.api("POST", f"/v1/models/{busy['id']}/cancel")
        progress.filter(has_text="Stage").wait_for(timeout=60_000)
        assert page.locator("[data-ref=state] .badge").inner_text() == "running"
    finally:
        for model in (busy, waiting, mine):
            stack.api("POST", f"/v1/models/{model['id']}/cancel")
    page.locator("[data-ref=state] .badge").filter(has_text="canceled").wait_for(timeout=60_000)
