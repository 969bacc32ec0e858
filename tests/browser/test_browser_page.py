"""The page at `/`, driven in headless Chromium against a real API and a real worker (the embedded stack).

Each test acts as a person would (clicks, drops files, drags on the canvas) and checks what the page shows and
what reached the service. Trainings are tiny (2-3 stages of a few dozen iterations at 32-40 px), so the
module takes about a minute or two on 2 busy cores.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.browser.conftest import Stack
from tests.browser.images import landscape, painting, star_object

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PNG_FILE = "image/png"
# The generation model the page trains: 3 stages, so two stage previews arrive while it still runs.
GENERATION = {"stages": "3", "iters": "60", "max_size": "40"}
HARMONIZATION = {
    "preset": "quick",
    "mode": "harmonization",
    "train_stages": "2",
    "iters_per_stage": "20",
    "max_size": "32",
    "min_size": "16",
}
TRAINED: dict[str, str] = {}  # mode -> model id, shared by the tests of this module
UNAVAILABLE = {  # the API's answer while the database is down (tests/faults)
    "type": "https://consingan.dev/problems/unavailable",
    "title": "A dependency is unavailable",
    "status": 503,
    "detail": "the database is unavailable right now; retry after 1 s",
}


def sign_in(page: Any, stack: Stack, hash_: str = "") -> None:
    page.goto(f"{stack.base_url}/{hash_}")
    page.fill("#api-key", stack.key)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def wait_until_trained(stack: Stack, model_id: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        model = stack.api("GET", f"/v1/models/{model_id}").json()
        if model["state"] in ("succeeded", "failed", "canceled"):
            assert model["state"] == "succeeded", f"{model}\n{stack.log_tail()}"
            return model
        assert time.monotonic() < deadline, f"training did not finish: {model}\n{stack.log_tail()}"
        time.sleep(0.5)


def trained_model(stack: Stack, mode: str) -> str:
    """The model an earlier test trained through the page, or one trained through the API now."""
    if mode not in TRAINED:
        fields = HARMONIZATION if mode == "harmonization" else {
            "preset": "quick", "train_stages": "2", "iters_per_stage": "20", "max_size": "40", "min_size": "16"
        }  # fmt: skip
        image = painting() if mode == "harmonization" else landscape()
        created = stack.api(
            "POST", "/v1/models", data=fields, files={"image": ("scene.png", image, PNG_FILE)}
        )
        assert created.status_code == 202, created.text
        TRAINED[mode] = created.json()["id"]
    wait_until_trained(stack, TRAINED[mode])
    return TRAINED[mode]


def model_count(stack: Stack) -> int:
    return len(stack.api("GET", "/v1/models?limit=100").json()["data"])


def test_sign_in_refuses_a_wrong_key_then_accepts_the_right_one(page: Any, stack: Stack, shots: Path) -> None:
    page.goto(stack.base_url)
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.get_attribute("#api-key", "type") == "password"
    page.screenshot(path=shots / "sign-in.png")

    page.fill("#api-key", "csk_not-a-real-key")
    page.click("#sign-in-form button[type=submit]")
    error = page.locator("#api-key-error")
    error.wait_for(state="visible")
    assert "This key was not accepted" in error.inner_text()
    assert "Authorization: Bearer" in error.inner_text()  # the problem's own detail, from the API
    assert page.get_attribute("#api-key", "aria-invalid") == "true"
    assert page.locator("#app").is_hidden()
    page.screenshot(path=shots / "wrong-key.png")

    page.fill("#api-key", stack.key)
    page.click("#sign-in-form button[type=submit]")
    page.get_by_role("heading", name="Train a new model").wait_for()
    assert error.is_hidden()
    assert stack.key not in page.url
    assert page.evaluate("sessionStorage.getItem('consingan.apiKey')") == stack.key
    assert page.evaluate("localStorage.length") == 0  # kept for the tab only

    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('consingan.apiKey')") is None


def test_a_non_image_upload_shows_the_services_problem_next_to_the_drop_zone(
    page: Any, stack: Stack, shots: Path
) -> None:
    sign_in(page, stack, "#/new")
    before = model_count(stack)
    page.set_input_files(
        "#train-image", files=[{"name": "holiday.png", "mimeType": PNG_FILE, "buffer": b"not a picture"}]
    )
    page.get_by_text("this browser cannot show it").wait_for()
    page.click("button:has-text('Start training')")
    error = page.locator("#train-image-error")
    error.wait_for(state="visible")
    assert "not a readable image" in error.inner_text()  # the API's invalid-image problem, as it said it
    assert "The upload is not an acceptable image" in error.inner_text()
    # next to what caused it: right below the drop zone
    drop = page.locator(".drop-zone").bounding_box()
    box = error.bounding_box()
    assert 0 <= box["y"] - (drop["y"] + drop["height"]) < 40
    page.screenshot(path=shots / "upload-error.png")
    assert model_count(stack) == before


def test_training_progress_advances_live_and_the_gallery_fills(page: Any, stack: Stack, shots: Path) -> None:
    sign_in(page, stack, "#/new")
    page.set_input_files(
        "#train-image", files=[{"name": "hills.png", "mimeType": PNG_FILE, "buffer": landscape()}]
    )
    page.select_option("#train-preset", "quick")
    page.click("summary:has-text('Advanced settings')")
    page.fill("#train-stages", GENERATION["stages"])
    page.fill("#train-iters", GENERATION["iters"])
    page.fill("#train-max-size", GENERATION["max_size"])
    page.locator("#train-max-size").dispatch_event("change")
    caption = page.locator("[data-ref=seen-caption]")
    caption.filter(has_text="The model sees 40 × 27 px").wait_for()  # 192 x 128 fitted into 40 px
    assert "you uploaded 192 × 128" in caption.inner_text()
    assert page.evaluate("document.querySelector('[data-ref=seen-canvas]').width") == 40

    page.click("button:has-text('Start training')")
    page.wait_for_url(re.compile(r"#/models/mdl_[0-9a-f]+$"))
    model_id = page.url.rsplit("/", 1)[1]
    TRAINED["generation"] = model_id

    # Watch it learn: the bar and the text move while the worker trains; stage previews arrive.
    seen: list[float] = []
    texts: set[str] = set()
    screenshot_taken = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = page.locator("[data-ref=state] .badge").inner_text()
        if state == "succeeded":
            break
        assert state in ("queued", "running"), f"{state}\n{stack.log_tail()}"
        value = page.evaluate("document.querySelector('[data-ref=progress-bar]').getAttribute('value')")
        text = page.locator("[data-ref=progress-text]").inner_text()
        if state == "running" and value is not None and text.startswith("Stage"):
            seen.append(float(value))
            texts.add(text)
            tiles = page.locator(".stage-tile img[src]").count()
            if tiles >= 1 and text.startswith("Stage 2") and not screenshot_taken:
                page.screenshot(path=shots / "training-progress.png")
                screenshot_taken = True
        time.sleep(0.25)
    else:
        pytest.fail(f"training did not finish in time\n{stack.log_tail()}")
    assert len(set(seen)) >= 3 and seen == sorted(seen), seen  # it advanced, live, and never went back
    assert 0 < seen[0] < 100 and any(re.search(r"Stage \d of 3 · iteration \d+ of 60", t) for t in texts), (
        texts
    )
    assert any("left" in t for t in texts), texts  # an ETA was shown
    assert screenshot_taken, "no stage preview appeared while the training ran"

    page.get_by_role("heading", name="Gallery").wait_for()
    page.locator("[data-ref=gallery] .tile img[src]").nth(7).wait_for()  # the 8 training previews
    assert page.locator("[data-ref=gallery] .tile").count() == 8
    # after each finished stage, a small preview of what the model draws; the last is the training's own
    strip = page.locator("[data-ref=stage-strip] figcaption")
    assert strip.all_inner_texts() == ["Training image", "Stage 1", "Stage 2", "Stage 3 (final)"]
    page.locator("[data-ref=stage-strip] img[src]").nth(3).wait_for()
    assert page.locator("[data-ref=progress-text]").inner_text().startswith("Trained in")
    assert page.locator(f"#model-list li[data-model-id={model_id}] .badge").inner_text() == "succeeded"
    page.screenshot(path=shots / "gallery.png", full_page=True)


def test_following_a_training_waits_out_a_503_and_goes_on(page: Any, stack: Stack) -> None:
    """While the database or storage is down the API answers 503 with Retry-After (tests/faults): the page
    keeps following the training through it, without an error, instead of giving up."""
    created = stack.api(
        "POST",
        "/v1/models",
        data={
            "preset": "quick",
            "train_stages": "2",
            "iters_per_stage": "5000",
            "max_size": "32",
            "min_size": "16",
        },
        files={"image": ("hills.png", landscape(), PNG_FILE)},
    )  # long enough to still run after the outage; canceled at the end
    assert created.status_code == 202, created.text
    model_id, job_id = created.json()["id"], created.json()["train_job_id"]
    reads = {"model": 0, "events": 0}
    refused = {"model": 0, "events": 0}

    def outage(route: Any, what: str) -> None:
        reads[what] += 1
        # The model is read once (then followed through its training job's event stream): its next read
        # meets the outage when there is one. The events: the first read is the page of past events, the
        # next two (the stream connecting) meet the outage; the stream reconnects after each Retry-After.
        if reads[what] in (2, 3):
            refused[what] += 1
            route.fulfill(
                status=503,
                headers={"Retry-After": "1"},
                content_type="application/problem+json",
                body=json.dumps(UNAVAILABLE),
            )
        else:
            route.continue_()

    page.route(f"**/v1/models/{model_id}", lambda route: outage(route, "model"))
    page.route(re.compile(rf".*/v1/jobs/{job_id}/events(\?.*)?$"), lambda route: outage(route, "events"))
    error = page.locator("[data-ref=model-error]")
    progress = page.locator("[data-ref=progress-text]")
    try:
        sign_in(page, stack, f"#/models/{model_id}")
        deadline = time.monotonic() + 120
        # streamed on after the outage (a fourth events request), the training's progress shown
        while refused["events"] < 2 or reads["events"] < 4 or not progress.inner_text().startswith("Stage"):
            assert error.is_hidden(), error.inner_text()
            assert time.monotonic() < deadline, f"refused {refused}, read {reads}\n{stack.log_tail()}"
            page.wait_for_timeout(250)
        assert error.is_hidden(), error.inner_text()
        assert page.locator("[data-ref=state] .badge").inner_text() == "running"
    finally:
        canceled = stack.api("POST", f"/v1/models/{model_id}/cancel")  # frees the worker for the next tests
    assert canceled.status_code in (200, 202), canceled.text
    page.locator("[data-ref=state] .badge").filter(has_text="canceled").wait_for(timeout=60_000)
    assert error.is_hidden(), error.inner_text()


def test_draw_four_samples_at_one_and_a_half_width_then_download_and_delete_one(
    page: Any, stack: Stack, shots: Path
) -> None:
    model_id = trained_model(stack, "generation")
    sign_in(page, stack, f"#/models/{model_id}")
    page.get_by_role("heading", name="Gallery").wait_for()
    previews = page.locator("[data-ref=gallery] .tile")
    previews.first.wait_for()
    before = previews.count()
    top_width = int(
        re.search(r"draws at (\d+) × (\d+) px", page.locator("[data-ref=meta]").inner_text()).group(1)
    )

    page.fill("#draw-n", "4")
    page.fill("#draw-scale-w", "1.5")  # the width slider
    assert page.locator("[data-ref=scale-w-out]").inner_text() == f"1.50× = {int(top_width * 1.5)} px"
    page.click("button:has-text('Draw more')")
    status = page.locator("[data-ref=draw-status]")
    status.filter(has_text="Drew 4 images").wait_for(timeout=60_000)
    assert f"of {int(top_width * 1.5)} × " in status.inner_text()
    assert previews.count() == before + 4
    drawn = page.locator("[data-ref=gallery] .tile").first
    assert "drawn" in drawn.locator("figcaption").inner_text()
    page.locator("[data-ref=gallery] .tile img[src]").nth(3).wait_for()
    natural = page.evaluate("document.querySelector('[data-ref=gallery] .tile img').naturalWidth")
    assert natural == int(top_width * 1.5)
    page.screenshot(path=shots / "samples-1.5x.png", full_page=True)

    # download the newest: the bytes the API stored, fetched with the key (never in the URL)
    sample_id = drawn.get_attribute("data-sample-id")
    with page.expect_download() as download_info:
        drawn.get_by_role("button", name=re.compile("Download")).click()
    download = download_info.value
    assert download.suggested_filename == f"{sample_id}.png"
    with Image.open(download.path()) as image:
        assert image.size[0] == int(top_width * 1.5)

    drawn.get_by_role("button", name=re.compile("Delete")).click()
    page.locator(f"[data-sample-id={sample_id}]").wait_for(state="detached")
    listed = stack.api("GET", f"/v1/models/{model_id}/samples?limit=100").json()["data"]
    assert sample_id not in {s["id"] for s in listed} and len(listed) == before + 3

    # an animation of the same model, shown where the samples are
    page.fill("#anim-frames", "6")
    page.click("button:has-text('Make an animation')")
    animation = page.locator("[data-ref=animations] .tile img[src]")
    animation.first.wait_for(timeout=60_000)
    assert page.locator("[data-ref=animations] figcaption").first.inner_text() == "6 frames at 10 fps"
    (job,) = stack.api("GET", f"/v1/jobs?model_id={model_id}&kind=animate").json()["data"]
    assert job["state"] == "succeeded" and job["result"]["frames"] == 6


def test_enlarge_a_models_image_with_its_super_resolution_head(page: Any, stack: Stack, shots: Path) -> None:
    fields = {"preset": "quick", "train_stages": "2", "iters_per_stage": "10", "max_size": "40", "min_size": "16",
              "sr_factor": "2", "sr_iters": "5"}  # fmt: skip
    created = stack.api(
        "POST", "/v1/models", data=fields, files={"image": ("scene.png", landscape(), PNG_FILE)}
    )
    assert created.status_code == 202, created.text
    model = wait_until_trained(stack, created.json()["id"])
    deadline = time.monotonic() + 120  # the head trains after the model, as a job of its own
    while model["sr_head"] is None:
        assert time.monotonic() < deadline, f"no head: {model}\n{stack.log_tail()}"
        time.sleep(0.5)
        model = stack.api("GET", f"/v1/models/{model['id']}").json()
    top = stack.api("GET", f"/v1/pyramid?width={model['image']['width']}&height={model['image']['height']}"
                    "&preset=quick&train_stages=2&max_size=40&min_size=16").json()["top"]  # fmt: skip
    sign_in(page, stack, f"#/models/{model['id']}")
    page.get_by_role("heading", name="Super-resolution").wait_for()
    assert "trained for ×2" in page.locator("[data-ref=sr-about]").inner_text()
    page.fill("#sr-factor", "2")
    page.fill("#sr-n", "2")
    page.click("button:has-text('Enlarge')")
    tile = page.locator("[data-ref=enlargements] .tile img[src]")
    tile.first.wait_for(timeout=60_000)
    caption = page.locator("[data-ref=enlargements] figcaption").first.inner_text()
    size = f"{top['width']} × {top['height']} → {2 * top['width']} × {2 * top['height']} px"
    assert caption == f"×2: {size}, 2 versions"
    natural = page.evaluate("document.querySelector('[data-ref=enlargements] img').naturalWidth")
    assert natural == 2 * top["width"]
    # the real-size viewer takes the focus; Close gives it back to the button that opened it
    opener = page.get_by_role("button", name=re.compile("View enlargement")).first
    opener.click()
    page.wait_for_function("() => document.activeElement?.dataset.ref === 'sr-view-title'")
    page.click("[data-ref=sr-view-close]")
    assert opener.evaluate("b => b === document.activeElement")
    (job,) = stack.api("GET", f"/v1/jobs?model_id={model['id']}&kind=super_resolve").json()["data"]
    assert job["state"] == "succeeded" and len(job["result"]["files"]) == 2
    page.screenshot(path=shots / "super-resolution.png", full_page=True)

    page.fill("#sr-factor", "0.5")  # below the range: the service's problem shows next to the field
    page.click("button:has-text('Enlarge')")
    error = page.locator("[data-ref=sr-form] [data-error-for=factor]")
    error.wait_for()
    assert "factor" in error.inner_text() or "greater" in error.inner_text()


def test_harmonize_by_placing_an_object_and_painting_a_mask(page: Any, stack: Stack, shots: Path) -> None:
    model_id = trained_model(stack, "harmonization")
    sign_in(page, stack, f"#/models/{model_id}")
    page.get_by_role("link", name="Harmonize an object into it").click()
    page.wait_for_url(re.compile(r"/harmonize$"))
    page.get_by_text("The painting, 160 × 120 px").wait_for()

    page.set_input_files(
        "#object-file", files=[{"name": "star.png", "mimeType": PNG_FILE, "buffer": star_object()}]
    )
    page.get_by_text("its transparency is the mask").wait_for()
    page.fill("#object-scale", "40")  # the star's side: 40% of the painting's 120 px = 48 px
    page.locator("#object-scale").dispatch_event("input")

    canvas = page.locator("[data-ref=canvas]")
    box = canvas.bounding_box()
    to_screen = box["width"] / 160  # CSS px per painting px

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * to_screen, box["y"] + y * to_screen

    # drag the star from the middle (80, 60) to (40, 40)
    page.mouse.move(*at(80, 60))
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(*at(80 - 5 * step, 60 - 2.5 * step))
    page.mouse.up()
    assert "Object at 16, 16, 48 × 48 px" in page.locator("[data-ref=status]").inner_text()

    # paint the mask into the star box's transparent top-left corner (16..26, 16..22), then erase a bit
    page.get_by_label("Paint mask").check()
    page.fill("#brush-size", "6")
    page.locator("#brush-size").dispatch_event("input")
    page.mouse.move(*at(18, 18))
    page.mouse.down()
    page.mouse.move(*at(24, 19))
    page.mouse.up()
    page.screenshot(path=shots / "harmonize-editor.png", full_page=True)

    page.click("button:has-text('Harmonize')")
    result = page.locator("[data-ref=result-img]")
    result.wait_for(state="visible", timeout=120_000)
    page.wait_for_function("() => document.querySelector('[data-ref=result-img]').naturalWidth > 0")
    assert page.evaluate("document.querySelector('[data-ref=result-img]').naturalWidth") == 160
    page.fill("#compare-slider", "30")
    page.locator("#compare-slider").dispatch_event("input")
    clip = page.evaluate("document.querySelector('[data-ref=compare-after]').style.clipPath")
    assert clip == "inset(0px 70% 0px 0px)"
    page.screenshot(path=shots / "harmonize-result.png", full_page=True)

    # What reached the service: naive and mask at the painting's size, the star where it was dropped, and
    # the painted corner in the mask although the star is transparent there.
    jobs = stack.api("GET", f"/v1/jobs?model_id={model_id}&kind=harmonize").json()["data"]
    assert len(jobs) == 1 and jobs[0]["state"] == "succeeded"
    folder = stack.storage_dir / "models" / model_id / "jobs" / jobs[0]["id"]
    with Image.open(folder / "mask.png") as mask_file, Image.open(folder / "naive.png") as naive_file:
        mask, naive = mask_file.convert("L"), naive_file.convert("RGB")
    assert mask.size == naive.size == (160, 120)
    assert sum(mask.histogram()[1:255]) == 0  # black and white only
    # the star spans 91% of its 48-px box's width and 88% of its height, from (18, 16) to about (62, 59)
    left, top, right, bottom = mask.getbbox()
    assert left == 16 and top == 16, (left, top)  # the painted corner
    assert 60 <= right <= 64 and 56 <= bottom <= 62, (right, bottom)
    assert mask.getpixel((40, 42)) == 255 and mask.getpixel((80, 80)) == 0
    assert mask.getpixel((20, 18)) == 255  # painted by hand
    red, green, blue = naive.getpixel((40, 42))  # the star's cyan, pasted
    assert green > 180 and blue > 180 and red < 120
    with Image.open(io.BytesIO(painting())) as original:
        assert naive.getpixel((120, 100)) == original.convert("RGB").getpixel((120, 100))


def test_the_page_fits_a_phone_and_every_control_is_labelled(browser: Any, stack: Stack, shots: Path) -> None:
    model_id = trained_model(stack, "generation")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, stack, f"#/models/{model_id}")
        page.locator("[data-ref=gallery] .tile img[src]").first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=shots / "phone.png", full_page=True)
        harmonize = f"#/models/{trained_model(stack, 'harmonization')}/harmonize"
        for hash_ in (f"#/models/{model_id}", "#/new", harmonize):
            page.goto(f"{stack.base_url}/{hash_}")
            page.locator("#view h1").first.wait_for()
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, hash_
            unlabelled = page.evaluate(
                """[...document.querySelectorAll('input, select, textarea, canvas[tabindex]')]
                   .filter((c) => c.type !== 'hidden' && !(c.labels && c.labels.length)
                                  && !c.getAttribute('aria-label') && !c.getAttribute('aria-labelledby'))
                   .map((c) => c.outerHTML)"""
            )
            assert unlabelled == [], (hash_, unlabelled)
            no_alt = page.evaluate("[...document.querySelectorAll('img:not([alt])')].map((i) => i.outerHTML)")
            assert no_alt == [], (hash_, no_alt)
        page.set_input_files(
            "#object-file", files=[{"name": "star.png", "mimeType": PNG_FILE, "buffer": star_object()}]
        )
        page.get_by_text("its transparency is the mask").wait_for()
        page.screenshot(path=shots / "phone-harmonize.png", full_page=True)
    finally:
        context.close()


def test_keyboard_focus_is_visible_and_reaches_the_sign_in(page: Any, stack: Stack) -> None:
    page.goto(stack.base_url)
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "api-key"  # focused on arrival
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
