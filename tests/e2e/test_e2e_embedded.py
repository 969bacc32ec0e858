"""`python -m worker.embedded` (what `make run` starts): SQLite, a local folder, API + worker, one command."""

from __future__ import annotations

import contextlib
import io
import os
import signal
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


def _runner_env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSINGAN_")},
        "CONSINGAN_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'consingan.db'}",
        "CONSINGAN_STORAGE_DIR": str(tmp_path / "data" / "objects"),
        "CONSINGAN_PORT": str(port),
        "CONSINGAN_DEVICE": "cpu",
    }


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_up_is_printed_once_the_api_answers_and_kill_9_takes_the_api_and_the_long_lane_down(
    tmp_path: Path,
) -> None:
    port = free_port()
    log_path = tmp_path / "embedded.log"
    with log_path.open("wb") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", "worker.embedded"],
            env=_runner_env(tmp_path, port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while b"embedded service up" not in log_path.read_bytes():
            assert runner.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.05)
        # the very first request after "up" is answered: no retry
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        children = _children(runner.pid)
        assert len(children) == 2  # the API and the long lane's process (docs/lanes.md)
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        deadline = time.monotonic() + 30
        while not all(_gone(child) for child in children):
            assert time.monotonic() < deadline, "the API or the long lane outlived its runner"
            time.sleep(0.1)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        if runner.poll() is None:
            runner.kill()
        for pid in _children(runner.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_busy_port_is_a_one_line_error_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "worker.embedded"],
            env=_runner_env(tmp_path, port), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert output.count("\n") == 0 and f"127.0.0.1:{port} is already in use" in output, output
    assert not (tmp_path / "data" / "consingan.db").exists()  # nothing started, nothing migrated
