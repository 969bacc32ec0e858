"""`python -m worker.embedded` (what `make run` starts): SQLite, a local folder, API + worker, one command."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core.keys import main as keys_main
from core.settings import get_settings
from tests.service_fixtures import scene_image

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_embedded_runner_trains_and_serves_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSINGAN_")},
        "CONSINGAN_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'consingan.db'}",
        "CONSINGAN_STORAGE_DIR": str(tmp_path / "data" / "objects"),
        "CONSINGAN_PORT": str(port),
        "CONSINGAN_DEVICE": "cpu",
    }
    settings = get_settings(database_url=env["CONSINGAN_DATABASE_URL"])
    keys_main(["create", "--owner", "me"], settings=settings)
    key = next(
        line.split(":", 1)[1].strip()
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("api key")
    )
    headers = {"Authorization": f"Bearer {key}"}
    log_path = tmp_path / "embedded.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.embedded"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        created = httpx.post(
            f"{base}/v1/models",
            headers=headers,
            data={
                "preset": "quick",
                "train_stages": "2",
                "iters_per_stage": "3",
                "max_size": "32",
                "min_size": "16",
            },
            files={"image": ("scene.png", scene_image(), "image/png")},
        )
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 180
        model = created.json()
        while model["state"] not in ("succeeded", "failed", "canceled") and time.monotonic() < deadline:
            time.sleep(0.5)
            model = httpx.get(f"{base}{created.headers['location']}", headers=headers).json()
        assert model["state"] == "succeeded", f"{model}\n{log_path.read_text()[-4000:]}"
        samples = httpx.get(f"{base}/v1/models/{model['id']}/samples", headers=headers).json()["data"]
        assert samples and samples[0]["url"].startswith(f"{base}/v1/models/{model['id']}/samples/")
        assert httpx.get(samples[0]["url"]).status_code == 401  # the streamed route needs the key
        download = httpx.get(samples[0]["url"], headers=headers)
        assert download.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(download.content)) as image:
            image.load()
            assert image.size == (samples[0]["width"], samples[0]["height"])
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
