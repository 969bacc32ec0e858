"""The upload form says how long the training would take here (GET /v1/estimate), before Start, and
updates as the settings change; the head's cost is shown when a factor is set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import Stack
from tests.browser.images import landscape
from tests.browser.test_browser_page import PNG_FILE, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def total_seconds(text: str) -> int:
    found = re.search(r"about (?:(\d+) h )?(?:(\d+) min ?)?(?:(\d+) s)?", text)
    assert found, text
    hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_the_upload_form_shows_the_expected_training_time_and_follows_the_settings(
    page: Any, stack: Stack, shots: Path
) -> None:
    sign_in(page, stack, "#/new")
    estimate = page.locator("#train-estimate")
    assert estimate.is_hidden()  # no image, no estimate
    asked: list[str] = []  # every estimate the page asks for
    page.on("request", lambda request: asked.append(request.url) if "/v1/estimate?" in request.url else None)
    # The preset first: with no image yet it asks for nothing, so the image brings the one estimate request
    # whose answer the page shows (compared below with that answer, not with a second call of our own).
    page.select_option("#train-preset", "quick")
    with page.expect_response(lambda response: "/v1/estimate?" in response.url) as answered:
        page.set_input_files(
            "#train-image", files=[{"name": "hills.png", "mimeType": PNG_FILE, "buffer": landscape()}]
        )
    estimate.filter(has_text="Expected training time").wait_for()
    first = estimate.inner_text()
    assert "4 stages" in first and "queue" in first, first
    response = answered.value
    assert response.ok and len(asked) == 1, asked
    query = parse_qs(urlsplit(response.url).query)
    assert (query["width"], query["height"], query["preset"]) == (["192"], ["128"], ["quick"]), query
    expected = response.json()
    assert abs(total_seconds(first) - expected["total_s"]) <= 1.5, (first, expected)

    page.click("summary:has-text('Advanced settings')")
    page.fill("#train-max-size", "128")
    page.locator("#train-max-size").dispatch_event("change")
    page.wait_for_function(
        "(before) => document.querySelector('#train-estimate').textContent !== before", arg=first
    )
    larger = estimate.inner_text()
    assert total_seconds(larger) > total_seconds(first), (first, larger)

    page.fill("#train-sr-factor", "4")
    page.locator("#train-sr-factor").dispatch_event("change")
    estimate.filter(has_text="enlargement head").wait_for()
    assert total_seconds(estimate.inner_text()) > total_seconds(larger)
    page.screenshot(path=shots / "estimate.png", full_page=True)
