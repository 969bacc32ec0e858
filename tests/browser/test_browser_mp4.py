"""The page's animation form makes an MP4: it plays in a looping, muted <video> at the job's size, with
controls (it can be paused), and downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from tests.browser.conftest import Stack
from tests.browser.test_browser_page import sign_in, trained_model

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_an_mp4_animation_plays_on_the_page_and_downloads(page: Any, stack: Stack, shots: Path) -> None:
    model_id = trained_model(stack, "generation")
    sign_in(page, stack, f"#/models/{model_id}")
    page.get_by_role("heading", name="Gallery").wait_for()
    page.fill("#anim-frames", "8")
    page.select_option("#anim-format", "mp4")
    page.click("button:has-text('Make an animation')")
    video = page.locator("[data-ref=animations] .tile video[src]").first
    video.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => document.querySelector('[data-ref=animations] video').readyState >= 2"
    )  # decoded
    (job,) = stack.api("GET", f"/v1/jobs?model_id={model_id}&kind=animate").json()["data"]
    assert job["state"] == "succeeded" and job["params"]["format"] == "mp4"
    size = page.evaluate(
        "(() => { const v = document.querySelector('[data-ref=animations] video');"
        " return [v.videoWidth, v.videoHeight, v.loop, v.muted, v.controls]; })()"
    )
    assert size == [job["result"]["width"], job["result"]["height"], True, True, True]
    page.screenshot(path=shots / "animation-mp4.png", full_page=True)

    with page.expect_download() as download_info:
        page.locator("[data-ref=animations] .tile").first.get_by_role(
            "button", name="Download animation"
        ).click()
    download = download_info.value
    assert download.suggested_filename == f"{job['id']}-animation.mp4"
    with av.open(download.path()) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 8
