"""axe-core over the page's views: the sign-in, the upload form and a training in progress, a trained
model's gallery and the harmonize editor. 0 violations, every rule axe runs by default plus
`label-content-name-mismatch` (experimental in axe, so off unless asked for: the model list's links broke it).

axe-core comes from npm (tests/contract/ts/package.json, installed by `make install-ts`) and is injected by
Playwright's `add_script_tag`; the context bypasses the page's CSP, which rightly refuses injected scripts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Stack
from tests.browser.images import landscape
from tests.browser.test_browser_page import PNG_FILE, sign_in, trained_model
from tests.service_fixtures import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

AXE = Path(__file__).resolve().parents[1] / "contract" / "ts" / "node_modules" / "axe-core" / "axe.min.js"
EXTRA_RULES = ("label-content-name-mismatch",)


class Fetches:
    """The page's requests in flight, but for its event streams (open while a job runs, by design).

    Playwright's `wait_for_load_state("networkidle")` cannot tell when a view's fetches landed here: it fires
    once per document, and the page's views change by hash (same-document navigations), so after the first
    view it returns at once (measured with Playwright 1.65: 0.04 s after a hash navigation whose fetch took
    2 s). `quiet()` is networkidle per view: no request in flight for 500 ms."""

    QUIET_S = 0.5

    def __init__(self, page: Any) -> None:
        self.page = page
        self.in_flight: set[Any] = set()
        self.changed = time.monotonic()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Any) -> None:
        if request.headers.get("accept") != "text/event-stream":
            self.in_flight.add(request)
            self.changed = time.monotonic()

    def _ended(self, request: Any) -> None:
        if request in self.in_flight:
            self.in_flight.discard(request)
            self.changed = time.monotonic()

    def quiet(self, timeout_s: float = 20) -> None:
        """No request in flight for QUIET_S, counted from this call at the earliest: the requests of a view
        just navigated to may not have been reported yet."""
        began = time.monotonic()
        deadline = began + timeout_s
        while self.in_flight or time.monotonic() - max(self.changed, began) < self.QUIET_S:
            assert time.monotonic() < deadline, f"still fetching: {[r.url for r in self.in_flight]}"
            self.page.wait_for_timeout(50)  # Playwright delivers the page's request events while it waits


@pytest.fixture
def axe_page(browser: Any, stack: Stack) -> Iterator[tuple[Any, Fetches]]:
    if not AXE.is_file():
        unavailable(f"{AXE} missing: run `make install-ts` (npm)")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page, Fetches(page)  # watching before the first navigation: every request is seen
    context.close()


def violations(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    rules = {name: {"enabled": True} for name in EXTRA_RULES}
    found: list[dict[str, Any]] = page.evaluate(
        "async (rules) => (await axe.run(document, { rules })).violations", rules
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["html"][:200] for n in v["nodes"][:5]]} for v in found
    ]


def assert_clean(page: Any, fetches: Fetches, view: str) -> None:
    fetches.quiet()  # let the view's fetches land (and what they render be there)
    found = violations(page)
    assert found == [], f"{view}: {json.dumps(found, indent=1)}"


def test_axe_finds_nothing_on_the_sign_in_training_gallery_and_harmonize_views(
    axe_page: Any, stack: Stack
) -> None:
    page, fetches = axe_page
    page.goto(stack.base_url)
    page.wait_for_selector("#sign-in:not([hidden])")
    assert_clean(page, fetches, "sign-in")

    generation = trained_model(stack, "generation")
    harmonization = trained_model(stack, "harmonization")
    sign_in(page, stack, "#/new")
    page.locator("#view h1").first.wait_for()
    page.locator("#model-list a").first.wait_for()  # the model list (its links) is part of every view
    assert_clean(page, fetches, "upload form")

    fields = {"preset": "quick", "train_stages": "3", "iters_per_stage": "400", "max_size": "40"}
    created = stack.api(
        "POST", "/v1/models", data=fields, files={"image": ("scene.png", landscape(), PNG_FILE)}
    )
    assert created.status_code == 202, created.text
    running = created.json()["id"]
    try:
        deadline = time.monotonic() + 60
        while stack.api("GET", f"/v1/models/{running}").json()["state"] != "running":
            assert time.monotonic() < deadline, "the training did not start"
            time.sleep(0.3)
        page.goto(f"{stack.base_url}/#/models/{running}")
        page.locator("[data-ref=progress-section]").wait_for()
        assert_clean(page, fetches, "training in progress")
    finally:
        stack.api("POST", f"/v1/models/{running}/cancel")

    page.goto(f"{stack.base_url}/#/models/{generation}")
    page.locator("[data-ref=gallery] .tile img[src]").first.wait_for()
    assert_clean(page, fetches, "gallery")

    page.goto(f"{stack.base_url}/#/models/{harmonization}/harmonize")
    page.locator("#view h1").first.wait_for()
    assert_clean(page, fetches, "harmonize")


def test_axe_is_awake(axe_page: Any, stack: Stack) -> None:
    """The check can fail: a link whose name does not contain its text is found."""
    page, _ = axe_page
    page.goto(stack.base_url)
    page.wait_for_selector("#sign-in:not([hidden])")
    page.evaluate(
        """() => { const a = document.createElement('a'); a.href = '#x'; a.textContent = 'Sample one';
                   a.setAttribute('aria-label', 'Model mdl_1, generation'); document.body.append(a); }"""
    )
    assert "label-content-name-mismatch" in {v["id"] for v in violations(page)}
