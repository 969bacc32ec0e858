"""The upload form says how long the training would take here (GET /v1/estimate), before Start, and
updates as the settings change; the head's cost is shown when a factor is set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
    page.set_input_files(
        "#train-image", files=[{"name": "hills.png", "mimeType": PNG_FILE, "buffer": landscape()}]
    )
    page.select_option("#train-preset", "quick")
    estimate.filter(has_text="Expected training time").wait_for()
    first = estimate.inner_text()
    assert "4 stages" in first and "queue" in first, first
    expected = stack.api(
        "GET", "/v1/estimate", params={"width": 192, "height": 128, "preset": "quick"}
    ).json()
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
