"""An estimate the page cannot get (the service answers 503 for it) hides the estimate only: the preview of
what the model sees, which loaded, stays, and so does the form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import Stack
from tests.browser.images import landscape
from tests.browser.test_browser_page import PNG_FILE, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

UNAVAILABLE = {
    "type": "https://consingan.dev/problems/unavailable",
    "title": "Service unavailable",
    "status": 503,
    "detail": "the database did not answer",
}


def test_an_estimate_that_fails_keeps_the_preview(page: Any, stack: Stack) -> None:
    page.route(
        "**/v1/estimate?*",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "1"},
            content_type="application/problem+json",
            body=json.dumps(UNAVAILABLE),
        ),
    )
    sign_in(page, stack, "#/new")
    page.set_input_files(
        "#train-image", files=[{"name": "hills.png", "mimeType": PNG_FILE, "buffer": landscape()}]
    )
    with page.expect_response("**/v1/estimate?*"):
        page.select_option("#train-preset", "quick")
    seen = page.locator("[data-ref=seen]")
    seen.wait_for()
    page.wait_for_timeout(300)  # let the failed estimate's handler run
    assert seen.is_visible() and "The model sees" in seen.inner_text()
    assert page.locator("#train-estimate").is_hidden()
