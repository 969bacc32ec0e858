"""The Paint view in headless Chromium against a real API and embedded worker: the photo's palette as
swatches (shown in their colours under the page's CSP), a stroke drawn with one of them, a paint job with two
draws (one job for a double click), the results shown and named; a harmonization model offers no Paint link."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import Stack
from tests.browser.images import landscape
from tests.browser.test_browser_page import sign_in, trained_model, wait_until_trained

pytestmark = pytest.mark.browser

PNG_FILE = "image/png"


def paint_model(stack: Stack) -> str:
    fields = {
        "preset": "quick",
        "train_stages": "3",
        "iters_per_stage": "20",
        "max_size": "40",
        "min_size": "16",
    }
    created = stack.api(
        "POST", "/v1/models", data=fields, files={"image": ("scene.png", landscape(), PNG_FILE)}
    )
    assert created.status_code == 202, created.text
    model_id: str = created.json()["id"]
    wait_until_trained(stack, model_id)
    return model_id


def hex_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def test_paint_with_the_photos_colours_and_see_two_draws(page: Any, stack: Stack, shots: Path) -> None:
    model_id = paint_model(stack)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    sign_in(page, stack, f"#/models/{model_id}")
    page.get_by_role("link", name="Paint").click()
    page.wait_for_url(re.compile(r"/paint$"))
    page.get_by_text("A 480 × 320 canvas").wait_for()

    swatches = page.locator(".swatch")
    expect(swatches).to_have_count(5, timeout=20_000)  # retried until the palette is drawn
    colours = [swatches.nth(i).get_attribute("data-colour") for i in range(5)]
    assert len(set(colours)) == 5
    # the photo's sky is among them: a colour with much more blue than red
    assert any(hex_rgb(c)[2] - hex_rgb(c)[0] > 60 for c in colours if c), colours
    # each swatch shows its colour (set through the CSSOM: the CSP refuses inline style attributes)
    shown = [swatches.nth(i).evaluate("s => getComputedStyle(s).backgroundColor") for i in range(5)]
    assert shown == [f"rgb({', '.join(map(str, hex_rgb(c)))})" for c in colours if c], shown
    assert not [m for m in console if "Refused to apply inline style" in m], console

    # the canvas keeps the photo's aspect ratio (192 x 128 -> 480 x 320); paint a band with the darkest colour
    assert page.evaluate(
        "[document.querySelector('.paint-canvas').width, document.querySelector('.paint-canvas').height]"
    ) == [480, 320]
    swatches.nth(4).click()
    assert swatches.nth(4).get_attribute("aria-pressed") == "true"
    canvas = page.locator(".paint-canvas")
    box = canvas.bounding_box()
    scale = box["width"] / 480
    page.mouse.move(box["x"] + 40 * scale, box["y"] + 160 * scale)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + (40 + 40 * step) * scale, box["y"] + 160 * scale)
    page.mouse.up()

    page.select_option("#paint-stage", "2")
    page.fill("#paint-n", "2")
    page.fill("#paint-seed", "5")
    page.screenshot(path=shots / "paint-editor.png", full_page=True)
    page.dblclick("button:has-text('Paint'):not(.swatch)")  # the button is disabled at once: one job
    results = page.locator("[data-ref=results] img")
    results.nth(1).wait_for(state="visible", timeout=120_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-ref=results] img')].every(i => i.naturalWidth > 0)"
    )
    assert page.evaluate("document.querySelector('[data-ref=results] img').naturalWidth") == 40
    assert [results.nth(i).get_attribute("alt") for i in range(2)] == [
        f"Image made from your painting, stage 3, draw {i}" for i in (1, 2)
    ]
    saves = page.locator("[data-ref=results] button")
    assert [saves.nth(i).get_attribute("aria-label") for i in range(2)] == [
        f"Download {name} (stage 3, draw {i})" for i, name in ((1, "paint_0.png"), (2, "paint_1.png"))
    ]
    earlier = page.locator("[data-ref=earlier] img")
    earlier.first.wait_for(state="attached")
    assert earlier.first.get_attribute("alt") == "Image made from your painting, stage 3, draw 1"
    page.screenshot(path=shots / "paint-result.png", full_page=True)

    jobs = stack.api("GET", f"/v1/jobs?model_id={model_id}&kind=paint").json()["data"]
    assert len(jobs) == 1 and jobs[0]["state"] == "succeeded"
    assert jobs[0]["params"] == {"stage": 2, "quantize": True, "n": 2, "seed": 5}
    stored = stack.storage_dir / "models" / model_id / "jobs" / jobs[0]["id"] / "painting.png"
    with Image.open(io.BytesIO(stored.read_bytes())) as painting:
        rgb = painting.convert("RGB")
    assert rgb.size == (480, 320)
    assert rgb.getpixel((200, 160)) == hex_rgb(colours[4])  # the stroke, in the swatch's exact colour
    assert rgb.getpixel((460, 20)) != hex_rgb(colours[4])  # the fill elsewhere


def test_a_harmonization_model_has_no_paint_link_and_its_paint_view_says_why(page: Any, stack: Stack) -> None:
    model_id = trained_model(stack, "harmonization")
    sign_in(page, stack, f"#/models/{model_id}")
    page.get_by_role("link", name="Harmonize an object into it").wait_for()
    assert page.get_by_role("link", name="Paint", exact=True).count() == 0
    page.goto(f"{stack.base_url}/#/models/{model_id}/paint")
    page.get_by_text("cannot turn a painting into an image").wait_for()
    assert page.locator("[data-ref=run]").is_disabled()
