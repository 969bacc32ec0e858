"""The first view of someone with no model yet shows what a model does (an example strip of a real photo's
quick model, served by the API from api/static/examples), not an empty panel; it goes once they have one."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Stack
from tests.browser.images import landscape

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLES = Path(__file__).resolve().parents[2] / "api" / "static" / "examples"


def new_owner_key(stack: Stack, owner: str) -> str:
    """A key of an owner with no models, in the stack's own database."""
    from core.keys import main as keys_main
    from core.settings import get_settings

    printed = io.StringIO()
    database_url = f"sqlite:///{stack.storage_dir.parent / 'consingan.db'}"
    with redirect_stdout(printed):
        keys_main(["create", "--owner", owner], settings=get_settings(database_url=database_url))
    return next(
        line.split(":", 1)[1].strip() for line in printed.getvalue().splitlines() if "api key" in line
    )


def test_with_no_model_yet_the_page_shows_what_a_model_does(page: Any, stack: Stack, shots: Path) -> None:
    key = new_owner_key(stack, "first-visitor")
    page.goto(stack.base_url)
    page.fill("#api-key", key)
    page.click("#sign-in-form button[type=submit]")
    examples = page.locator("#examples")
    examples.wait_for(state="visible")
    assert page.locator("#model-list-empty").is_visible()
    images = page.locator("#examples img")
    assert images.count() == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('#examples img')].every((i) => i.naturalWidth > 0)"
    )
    for index in range(images.count()):
        image = images.nth(index)
        assert len(image.get_attribute("alt") or "") > 20  # says what the picture shows
        source = image.get_attribute("src")
        served = httpx.get(f"{stack.base_url}{source}", timeout=10)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.content == (EXAMPLES / Path(source).name).read_bytes()
        assert image.bounding_box()["width"] > 150  # shown, not a thumbnail lost in the corner
    assert "New images of the scene" in examples.inner_text()
    page.screenshot(path=shots / "first-view.png", full_page=True)

    # once the person has a model, the list shows it instead
    headers = {"Authorization": f"Bearer {key}"}
    fields = {
        "preset": "quick",
        "train_stages": "2",
        "iters_per_stage": "5",
        "max_size": "32",
        "min_size": "16",
    }
    created = httpx.post(
        f"{stack.base_url}/v1/models",
        headers=headers,
        data=fields,
        files={"image": ("hills.png", landscape(), "image/png")},
        timeout=30,
    )
    assert created.status_code == 202, created.text
    try:
        page.reload()
        page.wait_for_selector("#app:not([hidden])")
        page.locator("#model-list li").first.wait_for()
        assert page.locator("#examples").is_hidden() and page.locator("#model-list-empty").is_hidden()
    finally:
        httpx.post(f"{stack.base_url}/v1/models/{created.json()['id']}/cancel", headers=headers, timeout=30)
