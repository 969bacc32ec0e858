"""What a newcomer sees (issue 22), in headless Chromium against the embedded stack: the model is ready before
its SR head, which shows its own progress and can be canceled; a cancel asks and can keep the stages trained
so far; a harmonization model says what its previews and samples are; the last stage's preview; an
enlargement at its real size beside bicubic."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Stack
from tests.browser.images import landscape, painting
from tests.browser.test_browser_page import PNG_FILE, sign_in, wait_until_trained

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SMALL = {"preset": "quick", "train_stages": "2", "iters_per_stage": "10", "max_size": "40", "min_size": "16"}


def create(stack: Stack, image: bytes, **fields: str) -> str:
    created = stack.api(
        "POST", "/v1/models", data={**SMALL, **fields}, files={"image": ("x.png", image, PNG_FILE)}
    )
    assert created.status_code == 202, created.text
    model_id: str = created.json()["id"]
    return model_id


def wait_for_job(stack: Stack, job_id: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = stack.api("GET", f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "canceled"):
            return job
        assert time.monotonic() < deadline, f"job did not finish: {job}\n{stack.log_tail()}"
        time.sleep(0.5)


def test_the_upload_form_says_what_the_head_costs(page: Any, stack: Stack) -> None:
    sign_in(page, stack, "#/new")
    page.get_by_role("heading", name="Train a new model").wait_for()
    page.click("summary:has-text('Advanced settings')")
    help_text = page.locator("#train-sr-help").inner_text()
    assert "+600 iterations at the full size" in help_text  # the quick preset's head
    assert "usable meanwhile" in help_text
    page.fill("#train-iters", "40")
    page.dispatch_event("#train-iters", "input")
    assert "is 40)" in page.locator("#train-sr-help").inner_text()


def test_the_model_is_ready_before_its_head_which_trains_with_its_own_progress(
    page: Any, stack: Stack, shots: Path
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel the enlargement head's training?"
    model_id = create(stack, landscape(), sr_factor="2", sr_iters="20000")
    model = wait_until_trained(stack, model_id)
    assert model["sr_head"] is None and model["sr_head_training"]["state"] in ("queued", "running")
    sign_in(page, stack, f"#/models/{model_id}")
    page.locator("[data-ref=state] .badge").filter(has_text="succeeded").wait_for()
    page.locator("[data-ref=gallery] .tile img[src]").first.wait_for()  # usable: its previews are there
    head_text = page.locator("[data-ref=head-text]")
    expect(head_text).to_have_text(
        re.compile(r"Enlargement head: training · iteration [1-9]\d* of 20000"), timeout=120_000
    )
    assert page.locator("[data-ref=head-bar]").get_attribute("value") not in (None, "0")
    page.screenshot(path=shots / "sr-head-training.png", full_page=True)

    page.click("button:has-text('Cancel the head')")
    expect(head_text).to_contain_text("canceled", timeout=60_000)
    assert "the model is unchanged" in head_text.inner_text()
    model = stack.api("GET", f"/v1/models/{model_id}").json()
    assert model["state"] == "succeeded" and model["sr_head"] is None

    # "Train the head" shows its progress too, then the head's facts and the enlarging form
    page.fill("#sr-head-factor", "2")
    page.fill("#sr-head-iterations", "40")
    page.click("button:has-text('Train the head')")
    expect(head_text).to_have_text(re.compile(r"Enlargement head: (queued|training)"))
    assert page.locator("[data-ref=head-training]").is_visible()
    expect(page.locator("[data-ref=sr-about]")).to_contain_text("trained for ×2", timeout=240_000)
    assert page.locator("[data-ref=head-training]").is_hidden()

    # an enlargement, viewed at its real size with a zoom, beside the bicubic one
    page.fill("#sr-factor", "2")
    page.click("button:has-text('Enlarge')")
    page.locator("[data-ref=enlargements] .tile img[src]").first.wait_for(timeout=120_000)
    page.click("button:has-text('View at real size')")
    for ref in ("sr-view-sr", "sr-view-bicubic"):
        page.locator(f"[data-ref={ref}][src]").wait_for()
    deadline = time.monotonic() + 20
    while page.evaluate("document.querySelector('[data-ref=sr-view-bicubic]').naturalWidth") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (job,) = stack.api("GET", f"/v1/jobs?model_id={model_id}&kind=super_resolve").json()["data"]
    width, height = job["result"]["width"], job["result"]["height"]
    assert job["result"]["comparison_url"]
    sizes = page.evaluate(
        "['sr-view-sr', 'sr-view-bicubic'].map(r => { const i = document.querySelector(`[data-ref=${r}]`);"
        " return [i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]; })"
    )
    assert sizes == [[width, height, width], [width, height, width]]  # real pixels, not a thumbnail
    page.fill("#sr-zoom", "3")
    page.dispatch_event("#sr-zoom", "input")
    shown = page.evaluate("document.querySelector('[data-ref=sr-view-sr]').getBoundingClientRect().width")
    assert shown == 3 * width
    assert re.search(r"Bicubic interpolation, \d+ × \d+ px", page.locator("[data-ref=sr-view]").inner_text())
    page.screenshot(path=shots / "enlargement-beside-bicubic.png", full_page=True)


def test_cancel_asks_and_can_keep_the_stages_trained_so_far(page: Any, stack: Stack, shots: Path) -> None:
    model_id = create(stack, landscape(), train_stages="3", iters_per_stage="400")
    sign_in(page, stack, f"#/models/{model_id}")
    page.locator("[data-ref=state] .badge").filter(has_text="running").wait_for(timeout=120_000)

    # before a stage finished there is nothing to keep; "Go on training" changes nothing
    page.click("button:has-text('Cancel training')")
    dialog = page.locator("[data-ref=cancel-dialog]")
    dialog.wait_for()
    if stack.api("GET", f"/v1/models/{model_id}").json()["stages_trained"] == 0:
        assert "nothing to keep" in dialog.inner_text() and page.locator("[data-ref=cancel-keep]").is_hidden()
    page.click("button:has-text('Go on training')")
    dialog.wait_for(state="hidden")
    assert stack.api("GET", f"/v1/models/{model_id}").json()["cancel_requested"] is False

    page.locator(".stage-strip [data-stage='0'] img[src]").wait_for(timeout=240_000)
    page.click("button:has-text('Cancel training')")
    keep = page.locator("[data-ref=cancel-keep]")
    keep.wait_for()
    assert re.fullmatch(r"Stop here and keep the [12] stages? trained so far", keep.inner_text())
    assert page.locator("[data-ref=cancel-discard]").is_visible()
    page.screenshot(path=shots / "cancel-dialog.png")
    keep.click()
    page.locator("[data-ref=state] .badge").filter(has_text="succeeded").wait_for(timeout=120_000)
    model = stack.api("GET", f"/v1/models/{model_id}").json()
    kept = model["stages_trained"]
    assert model["stages_planned"] == 3 and 1 <= kept < 3
    progress = page.locator("[data-ref=progress-text]").inner_text()
    assert f"Stopped after {kept} of 3 stages, which the model keeps" in progress
    assert f"{kept} of 3 stages trained" in page.locator("[data-ref=meta]").inner_text()
    page.locator("[data-ref=gallery] .tile img[src]").first.wait_for()  # previews of the kept model
    page.screenshot(path=shots / "kept-stages.png", full_page=True)

    # painting offers only the stages kept (the service refuses the others); a painting enters at stage 2 or
    # later, so a model that kept one stage has no Paint link, and its Paint view says why
    paint = page.get_by_role("link", name="Paint", exact=True)
    if kept == 1:
        assert paint.count() == 0
        page.goto(f"{stack.base_url}/#/models/{model_id}/paint")
        page.get_by_text("No stage to paint into.").wait_for()
        assert page.locator("[data-ref=run]").is_disabled()
    else:
        paint.click()
        page.get_by_text("canvas in the photo's aspect ratio").wait_for()
        options = page.locator("#paint-stage option").all_inner_texts()
        assert options == [f"{kept} of {kept}: redraws most, the photo's textures"], options


def test_a_harmonization_model_shows_its_image_injected_and_says_what_its_samples_are(
    page: Any, stack: Stack
) -> None:
    model_id = create(stack, painting(), mode="harmonization", max_size="32")
    wait_until_trained(stack, model_id)
    sign_in(page, stack, f"#/models/{model_id}")
    title = page.locator("[data-ref=stage-strip-title]")
    title.wait_for()
    assert title.inner_text() == "The image put in at stage 1 and rendered, after each stage"
    # both stages' previews, the last one included
    page.locator(".stage-strip [data-stage='1'] img[src]").wait_for()
    assert page.locator(".stage-strip [data-stage='1'] figcaption").inner_text() == "Stage 2 (final)"
    about = page.locator("[data-ref=draw-about]")
    about.wait_for()
    assert "re-render its own image" in about.inner_text() and "cut-out holes" in about.inner_text()
    assert page.locator("[data-ref=draw]").inner_text() == "Draw variations"


def test_the_last_stages_preview_is_announced_when_its_stage_ends(page: Any, stack: Stack) -> None:
    model_id = create(stack, landscape())
    model = wait_until_trained(stack, model_id)
    events = stack.api("GET", f"/v1/jobs/{model['train_job_id']}/events?limit=100").json()["data"]
    stage_done = [e for e in events if e["type"] == "stage_done"]
    assert [e["data"]["stage"] for e in stage_done] == [0, 1] and stage_done[-1]["links"]["preview"]
    assert events.index(stage_done[-1]) < [e["type"] for e in events].index("succeeded")
    sign_in(page, stack, f"#/models/{model_id}")
    final = page.locator(".stage-strip [data-stage='1']")
    final.locator("img[src]").wait_for()
    assert final.locator("figcaption").inner_text() == "Stage 2 (final)"
