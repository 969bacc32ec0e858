"""Interactive-lane latency: `POST /v1/models/{id}/samples` (n=4, `Prefer: wait=60`) idle and while another
model trains on the same host, through the production shape and through the embedded runner.

    .venv/bin/python bench/interactive.py [--requests 30] [--iters 60]

Production shape, all private (tests/faults/harness.py): its own redis-server and Postgres (initdb/pg_ctl),
moto's S3 server, the API (uvicorn) in its own process, one long-lane Celery worker (`-Q gpu`, a fresh
process per job, niced) and one warm interactive worker (CONSINGAN_WORKER_LANE=interactive). Then the
embedded runner (`python -m worker.embedded`: SQLite, local folder). For each: trains a small quick model
(--iters per stage) to sample from, measures --requests samples idle, starts another quick training (the
preset's defaults), measures again while it runs, cancels it. The reference in the same run: the engine
in this process loading the same checkpoint from bytes and drawing the same 4 images. Load averages are
printed beside every row (the machine may be shared). Goal on 2 cores (docs/lanes.md): idle p50 <= 0.25 s,
p99 <= 1 s; busy p50 <= 1 s, p99 <= 2.5 s.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.harness import (  # noqa: E402  (the repository root is put on the path first)
    PrivatePostgres,
    PrivateRedis,
    free_port,
    start_celery,
    stop_group,
    wait_for,
    wait_ready,
)

GOALS = {"idle": (0.25, 1.0), "busy": (1.0, 2.5)}  # p50, p99 seconds
SAMPLE_BODY = {"n": 4}


@dataclass
class Row:
    shape: str
    load: str
    times: list[float]
    loadavg_before: float
    loadavg_after: float
    training_still_running: bool | None = None

    def percentile(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank


def scene_png() -> bytes:
    from tests.service_fixtures import scene_image

    return scene_image(64, 48)


def env_of(settings: Any) -> dict[str, str]:
    from tests.service_fixtures import settings_env

    return {**os.environ, **settings_env(settings)}


def make_key(database_url: str) -> str:
    from core.db import Database
    from core.keys import create_key, get_or_create_owner

    db = Database(database_url)
    try:
        with db.transaction() as session:
            owner = get_or_create_owner(session, f"bench-{secrets.token_hex(4)}")
            return create_key(session, owner)
    finally:
        db.dispose()


class Api:
    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120)

    def train(self, **fields: str) -> str:
        data = {"preset": "quick", **fields}
        files = {"image": ("scene.png", scene_png(), "image/png")}
        response = self.http.post("/v1/models", data=data, files=files)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def state(self, model_id: str) -> str:
        return str(self.http.get(f"/v1/models/{model_id}").json()["state"])

    def wait_state(self, model_id: str, states: set[str], timeout_s: float) -> str:
        wait_for(lambda: self.state(model_id) in states, timeout_s, f"model {model_id} {states}", every_s=0.2)
        return self.state(model_id)

    def cancel(self, model_id: str) -> None:
        self.http.post(f"/v1/models/{model_id}/cancel")

    def sample(self, model_id: str, seed: int) -> float:
        started = time.perf_counter()
        response = self.http.post(
            f"/v1/models/{model_id}/samples",
            json={**SAMPLE_BODY, "seed": seed},
            headers={"Prefer": "wait=60"},
        )
        elapsed = time.perf_counter() - started
        body = response.json()
        if response.status_code != 200 or body.get("state") != "succeeded":
            raise AssertionError(f"sample not served within the wait: {response.status_code} {body}")
        return elapsed


def measure(api: Api, model_id: str, shape: str, load: str, requests: int, busy_id: str | None) -> Row:
    before = os.getloadavg()[0]
    times = [api.sample(model_id, seed) for seed in range(requests)]
    still = None if busy_id is None else api.state(busy_id) == "running"
    row = Row(shape, load, times, before, os.getloadavg()[0], still)
    print(f"{shape} {load}: p50 {row.percentile(0.5):.3f} s, max {max(times):.3f} s", flush=True)
    return row


def idle_and_busy(api: Api, shape: str, requests: int, iters: int) -> tuple[list[Row], str]:
    # The quick preset's pyramid (64 px, 32 channels): what a sample costs does not depend on how long it
    # trained, so a few iterations per stage (a CPU shared with other work trains the niced long lane slowly).
    model_id = api.train(train_stages="3", iters_per_stage=str(iters), seed="1")
    assert api.wait_state(model_id, {"succeeded", "failed"}, 1800) == "succeeded", "the model did not train"
    api.sample(model_id, 0)  # the first request of a model loads it (a miss); the rows measure the warm lane
    rows = [measure(api, model_id, shape, "idle", requests, None)]
    busy_id = api.train(seed="2")  # the quick preset's defaults: a few minutes of training on 2 cores
    api.wait_state(busy_id, {"running"}, 300)
    time.sleep(2.0)  # past the training's start-up, into its iterations
    try:
        rows.append(measure(api, model_id, shape, "busy", requests, busy_id))
    finally:
        api.cancel(busy_id)
        api.wait_state(busy_id, {"canceled", "succeeded", "failed"}, 120)
    return rows, model_id


@contextmanager
def s3_server() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 call otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/healthz"
    wait_for(lambda: process.poll() is None and httpx.get(url, timeout=2).status_code == 200, 60, "API up")
    return process


def celery_shape(folder: Path, requests: int, iters: int) -> tuple[list[Row], bytes]:
    """Rows of the Celery shape, and the sampled model's checkpoint (for the engine reference)."""
    from core.migrate import upgrade_to_head
    from core.settings import get_settings
    from core.storage import S3Storage, checkpoint_key

    with ExitStack() as stack:
        redis = PrivateRedis(folder)
        redis.start()
        stack.callback(redis.kill)
        pg = PrivatePostgres()
        pg.init()
        stack.callback(pg.destroy)
        upgrade_to_head(pg.url)
        endpoint = stack.enter_context(s3_server())
        settings = get_settings(
            database_url=pg.url, queue_mode="celery", broker_url=redis.url, storage_backend="s3",
            s3_endpoint_url=endpoint, s3_bucket="bench", s3_access_key_id="bench", s3_secret_access_key="bench",
            device="cpu", log_format="text",
        )  # fmt: skip
        S3Storage(settings).ensure_bucket()
        env = env_of(settings)
        port = free_port()
        api_process = start_api(env, port, folder / "api.log")
        stack.callback(stop_group, api_process)
        common = [
            "--pool=prefork",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ]
        long_log, interactive_log = folder / "long.log", folder / "interactive.log"
        long = start_celery(
            env, ["worker", "-Q", settings.gpu_queue, "-n", "bench-long@%h", *common], long_log
        )
        stack.callback(stop_group, long)
        interactive = start_celery(
            {**env, "CONSINGAN_WORKER_LANE": "interactive"},
            ["worker", "-Q", settings.interactive_queue, "-n", "bench-interactive@%h", *common],
            interactive_log,
        )
        stack.callback(stop_group, interactive)
        wait_ready(long, long_log)
        wait_ready(interactive, interactive_log)
        api = Api(f"http://127.0.0.1:{port}", make_key(pg.url))
        rows, model_id = idle_and_busy(api, "celery", requests, iters)
        checkpoint = S3Storage(settings).get(checkpoint_key(model_id))
        return rows, checkpoint


def embedded_shape(folder: Path, requests: int, iters: int) -> list[Row]:
    port = free_port()
    database_url = f"sqlite:///{folder / 'embedded.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSINGAN_")},
        "CONSINGAN_DATABASE_URL": database_url,
        "CONSINGAN_STORAGE_DIR": str(folder / "objects"),
        "CONSINGAN_PORT": str(port),
        "CONSINGAN_DEVICE": "cpu",
        "CONSINGAN_LOG_FORMAT": "text",
    }
    log = folder / "embedded.log"
    with log.open("ab") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "worker.embedded"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: b"embedded service up" in log.read_bytes(), 120, "embedded runner up", every_s=0.2)
        api = Api(f"http://127.0.0.1:{port}", make_key(database_url))
        rows, _ = idle_and_busy(api, "embedded", requests, iters)
        return rows
    finally:
        stop_group(runner)


def engine_reference(checkpoint: bytes, repeats: int = 10) -> tuple[float, float]:
    """Median seconds the engine takes, in this process, to load the checkpoint and to draw the 4 images,
    with the interactive lane's torch threads (setting interactive_torch_threads)."""
    import torch

    import engine
    from core.settings import get_settings
    from worker.artifacts import sample_in_batches

    threads = get_settings().interactive_torch_threads
    if threads:
        torch.set_num_threads(threads)
    loads, draws = [], []
    for seed in range(repeats):
        started = time.perf_counter()
        trained = engine.checkpoint.from_bytes(checkpoint, device="cpu")
        loaded = time.perf_counter()
        sample_in_batches(trained, SAMPLE_BODY["n"], engine.make_rng(seed, "cpu"))
        loads.append(loaded - started)
        draws.append(time.perf_counter() - loaded)
    return statistics.median(loads), statistics.median(draws)


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def print_rows(rows: list[Row], reference_s: float) -> None:
    from common import print_table

    table = []
    for row in rows:
        p50, p99 = row.percentile(0.5), row.percentile(0.99)
        goal_p50, goal_p99 = GOALS[row.load]
        met = "yes" if p50 <= goal_p50 and p99 <= goal_p99 else "no"
        running = (
            "" if row.training_still_running is None else ("yes" if row.training_still_running else "NO")
        )
        table.append([
            row.shape, row.load, len(row.times), f"{p50:.3f}", f"{p99:.3f}", f"{max(row.times):.3f}",
            f"{p50 / reference_s:.1f}x", f"<= {goal_p50:g} / {goal_p99:g}", met, running,
            f"{row.loadavg_before:.2f} -> {row.loadavg_after:.2f}",
        ])  # fmt: skip
    header = ["shape", "load", "n", "p50 s", "p99 s", "max s", "p50/engine", "goal p50/p99", "met"]
    print_table([*header, "training ran throughout", "loadavg 1 min"], table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30, help="sample requests per row")
    parser.add_argument("--iters", type=int, default=5, help="iterations per stage of the model sampled")
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    print(f"cpus {os.cpu_count()}, loadavg at start {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="consingan-bench-interactive-") as tmp:
        folder = Path(tmp)
        (folder / "celery").mkdir()
        rows, checkpoint = celery_shape(folder / "celery", args.requests, args.iters)
        load_s, draw_s = engine_reference(checkpoint)
        reference_load = os.getloadavg()[0]
        if not args.skip_embedded:
            (folder / "embedded").mkdir()
            rows += embedded_shape(folder / "embedded", args.requests, args.iters)
    print()
    print(
        f"engine in this process, same checkpoint ({len(checkpoint)} bytes), {torch_threads()} torch thread(s): "
        f"load {load_s * 1000:.1f} ms + draw n=4 {draw_s * 1000:.1f} ms = {(load_s + draw_s) * 1000:.1f} ms "
        f"(median of 10, measured between the two shapes, loadavg {reference_load:.2f})"
    )
    print_rows(rows, load_s + draw_s)
    print(f"loadavg at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
