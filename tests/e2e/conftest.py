"""The e2e modules' Celery worker. Its helpers (waits, a tiny training) are in tests/e2e/helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import METRICS_PORT
from tests.service_fixtures import RUN_ID, cancel_leftover_jobs, settings_env


# Module scope, not package scope: test_e2e_celery.py counts the metrics of its own module's jobs, and other
# modules (test_e2e_lanes.py, test_e2e_fair_share.py) start workers of their own on the same queues, which a
# worker living on would take jobs from.
@pytest.fixture(scope="module")
def celery_worker(
    settings: Any,
    redis_url: str,
    storage: Any,
    db: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """`celery -A worker.celery_app worker` as production runs it (prefork, one process per task), with the
    test's settings passed through CONSINGAN_* variables; yields its log's path."""
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    cancel_leftover_jobs(db)  # its reaper would otherwise run other tests' stranded jobs
    env = {**os.environ, **settings_env(settings), "CONSINGAN_BROKER_URL": redis_url}
    env["CONSINGAN_WORKER_METRICS_PORT"] = str(METRICS_PORT)
    env["CONSINGAN_WORKER_METRICS_ADDR"] = "127.0.0.1"
    env["CONSINGAN_WORKER_METRICS_DIR"] = str(log_path.parent / "metrics")
    command = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "--pool=prefork", "--concurrency=1", "--loglevel=INFO",
        "-Q", f"{settings.gpu_queue},{settings.interactive_queue},{settings.webhooks_queue}",
        "-n", f"e2e-{RUN_ID}@%h", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while b"ready" not in log_path.read_bytes() and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.2)
        yield log_path
    finally:
        process.terminate()  # warm shutdown
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
