"""Two lanes through real Celery workers on one host, as compose runs them: a long-lane worker (a fresh
process per job) and a warm interactive worker. A sample is drawn while another model trains, and the
interactive worker serves its second sample of a model from its cache (its metrics say so)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.queue import CeleryQueue
from tests.e2e.helpers import train_tiny, wait_for
from tests.faults.harness import free_port
from tests.service_fixtures import RUN_ID, cancel_leftover_jobs, scene_image, settings_env

pytestmark = pytest.mark.e2e


@dataclass
class Lanes:
    long_log: Path
    interactive_log: Path
    interactive_metrics: int

    def logs(self) -> str:
        return f"long:\n{self.long_log.read_text()[-3000:]}\ninteractive:\n{self.interactive_log.read_text()[-3000:]}"


def _start(env: dict[str, str], queue: str, name: str, log_path: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool=prefork",
        "--concurrency=1", "--loglevel=INFO", "-Q", queue, "-n", f"{name}-{RUN_ID}@%h",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def lanes(settings: Any, redis_url: str, db: Any, storage: Any, tmp_path_factory: Any) -> Iterator[Lanes]:
    folder = tmp_path_factory.mktemp("lanes")
    cancel_leftover_jobs(db)  # their reaper would otherwise run other tests' stranded jobs
    base = {**os.environ, **settings_env(settings), "CONSINGAN_BROKER_URL": redis_url, "OMP_NUM_THREADS": "1"}
    port = free_port()
    interactive_env = {
        **base,
        "CONSINGAN_WORKER_LANE": "interactive",
        "CONSINGAN_WORKER_METRICS_PORT": str(port),
        "CONSINGAN_WORKER_METRICS_ADDR": "127.0.0.1",
        "CONSINGAN_WORKER_METRICS_DIR": str(folder / "metrics"),
    }
    result = Lanes(folder / "long.log", folder / "interactive.log", port)
    long = _start(base, settings.gpu_queue, "lanes-long", result.long_log)
    interactive = _start(
        interactive_env, settings.interactive_queue, "lanes-interactive", result.interactive_log
    )
    try:
        deadline = time.monotonic() + 90
        for process, log in ((long, result.long_log), (interactive, result.interactive_log)):
            while b"ready" not in log.read_bytes():
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield result
    finally:
        _stop(interactive)
        _stop(long)


def test_a_sample_is_drawn_while_another_model_trains(
    lanes: Lanes, make_client: Any, settings: Any, redis_url: str, caller: Any
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    ready = train_tiny(client, caller, lanes.long_log)
    long_training = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "train_stages": "2", "iters_per_stage": "20000", "max_size": "32"},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert long_training.status_code == 202, long_training.text
    location = long_training.headers["location"]
    deadline = time.monotonic() + 90
    while client.get(location, headers=caller.headers).json()["state"] != "running":
        assert time.monotonic() < deadline, lanes.logs()
        time.sleep(0.2)
    try:
        for attempt in range(2):  # the second from the warm worker's cache
            drawn = client.post(
                f"/v1/models/{ready['id']}/samples",
                headers={**caller.headers, "Prefer": "wait=60"},
                json={"n": 4, "seed": attempt},
            )
            assert drawn.status_code == 200, f"{drawn.text}\n{lanes.logs()}"
            assert drawn.json()["state"] == "succeeded" and len(drawn.json()["samples"]) == 4
        training = client.get(location, headers=caller.headers).json()
        assert training["state"] == "running", training  # the sample did not wait for it
    finally:
        client.post(f"{location}/cancel", headers=caller.headers)
    canceled = wait_for(client, location, caller.headers, lanes.long_log, timeout_s=60)
    assert canceled["state"] == "canceled"

    text = httpx.get(f"http://127.0.0.1:{lanes.interactive_metrics}/metrics", timeout=10).text
    assert 'consingan_worker_model_cache_lookups_total{part="trained",result="miss"} 1.0' in text, text[
        -3000:
    ]
    assert 'consingan_worker_model_cache_lookups_total{part="trained",result="hit"} 1.0' in text
    assert 'consingan_worker_lane_run_seconds_count{lane="interactive",state="succeeded"} 2.0' in text
    assert 'consingan_worker_lane_queue_wait_seconds_count{lane="interactive"} 2.0' in text
    assert "consingan_worker_model_cache_bytes " in text


def test_the_embedded_runner_draws_a_sample_while_another_model_trains(tmp_path: Path) -> None:
    """`make run`: the interactive lane in the runner's process, the long lane in its own (niced) one."""
    from core.db import Database
    from core.keys import create_key, get_or_create_owner

    port, log_path = free_port(), tmp_path / "embedded.log"
    database_url = f"sqlite:///{tmp_path / 'consingan.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSINGAN_")},
        "CONSINGAN_DATABASE_URL": database_url,
        "CONSINGAN_STORAGE_DIR": str(tmp_path / "objects"),
        "CONSINGAN_PORT": str(port),
        "CONSINGAN_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
    }
    with log_path.open("wb") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", "worker.embedded"], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while b"embedded service up" not in log_path.read_bytes():
            assert runner.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.1)
        db = Database(database_url)
        with db.transaction() as session:
            key = create_key(session, get_or_create_owner(session, "lanes"))
        db.dispose()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=90
        )

        def train(iters: int) -> str:
            data = {"preset": "quick", "train_stages": "2", "iters_per_stage": str(iters), "max_size": "32"}
            files = {"image": ("scene.png", scene_image(48, 40), "image/png")}
            response = client.post("/v1/models", data=data, files=files)
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        def state(model_id: str) -> str:
            return str(client.get(f"/v1/models/{model_id}").json()["state"])

        ready = train(5)
        deadline = time.monotonic() + 240
        while (now := state(ready)) != "succeeded":  # one read per round: a second could see another state
            assert time.monotonic() < deadline and now in ("queued", "running"), (now, log_path.read_text())
            time.sleep(0.3)
        busy = train(20000)
        while state(busy) != "running":
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        drawn = client.post(f"/v1/models/{ready}/samples", json={"n": 4}, headers={"Prefer": "wait=60"})
        assert drawn.status_code == 200, f"{drawn.text}\n{log_path.read_text()[-3000:]}"
        assert drawn.json()["state"] == "succeeded" and state(busy) == "running"
        client.post(f"/v1/models/{busy}/cancel")
    finally:
        runner.terminate()
        try:
            runner.wait(30)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.wait(10)
