"""A real service and a real browser for the page's tests.

The service is the embedded stack (`python -m worker.embedded`, what `make run` starts): the API in a uvicorn
subprocess and a real worker training on the CPU, SQLite and a local folder in a temp directory. The browser
is Debian's chromium (`apt-get install chromium`; Playwright's own browser download is not reachable from
our machines), driven by Playwright through `executable_path`. Without chromium or Playwright the tests are
skipped with the reason; with CI=true they fail.

Screenshots go to `$CONSINGAN_SCREENSHOTS` when it is set (an artifacts folder to look at), else to a temp
folder; never to docs/screenshots: the docs' come from a model of a real photo (bench/screenshots.py), and
these tests' tiny models would overwrite them with blurry blobs.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service_fixtures import unavailable

README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    base_url: str
    key: str
    storage_dir: Path
    log_path: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base_url}{path}", headers=self.headers, timeout=30, **kwargs)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from core.keys import main as keys_main
    from core.settings import get_settings

    root = tmp_path_factory.mktemp("page-stack")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSINGAN_")},
        "CONSINGAN_DATABASE_URL": f"sqlite:///{root / 'consingan.db'}",
        "CONSINGAN_STORAGE_DIR": str(root / "objects"),
        "CONSINGAN_PORT": str(port),
        "CONSINGAN_DEVICE": "cpu",
        "CONSINGAN_QUEUE_MODE": "embedded",
        "CONSINGAN_PROGRESS_INTERVAL_S": "0.2",  # the page polls every second: let it see progress move
        "CONSINGAN_EMBEDDED_POLL_INTERVAL_S": "0.2",
        "CONSINGAN_CANCEL_POLL_INTERVAL_S": "0.2",
        "OMP_NUM_THREADS": "1",
    }
    printed = io.StringIO()
    with redirect_stdout(printed):
        keys_main(
            ["create", "--owner", "page-tester"],
            settings=get_settings(database_url=env["CONSINGAN_DATABASE_URL"]),
        )
    key = next(
        line.split(":", 1)[1].strip()
        for line in printed.getvalue().splitlines()
        if line.startswith("api key")
    )
    log_path = root / "embedded.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.embedded"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(f"http://127.0.0.1:{port}", key, root / "objects", log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{stack.base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"the embedded service did not start:\n{stack.log_tail()}")
            time.sleep(0.3)
        yield stack
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        unavailable("chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (make install)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage) at 1280 x 900. A JavaScript error on the page fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CONSINGAN_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    if path.resolve() == README_SCREENSHOTS:
        pytest.fail(
            "CONSINGAN_SCREENSHOTS points at docs/screenshots: the README's screenshots come from "
            "bench/screenshots.py (a real photo); point it at an artifacts folder instead"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path
