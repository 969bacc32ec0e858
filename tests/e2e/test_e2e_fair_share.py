"""Fair share in a lane, through Redis and a real Celery worker process: owner A queues 10 trainings, owner B
then queues one, and B's training starts before A's third (core.fair_share: message priorities)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from core.models import Job
from core.queue import CeleryQueue, priority_lists
from tests.service_fixtures import RUN_ID, TINY_TRAINING, cancel_leftover_jobs, scene_image, settings_env

pytestmark = pytest.mark.e2e


def start_worker(settings: Any, redis_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_env(settings), "CONSINGAN_BROKER_URL": redis_url}
    command = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "--pool=prefork", "--concurrency=1", "--loglevel=INFO", "-Q", settings.gpu_queue,
        "-n", f"fair-{RUN_ID}@%h", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_a_later_owner_starts_before_the_busy_owners_third_training(
    make_client: Any,
    make_caller: Any,
    settings: Any,
    redis_url: str,
    db: Any,
    tmp_path: Path,
) -> None:
    cancel_leftover_jobs(db)  # the worker's lane holds only this test's jobs
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    a, b = make_caller(), make_caller()
    fields = {name: str(value) for name, value in TINY_TRAINING.items()}

    def train(caller: Any) -> str:
        files = {"image": ("scene.png", scene_image(48, 40), "image/png")}
        response = client.post("/v1/models", headers=caller.headers, data=fields, files=files)
        assert response.status_code == 202, response.text
        return str(response.json()["train_job_id"])

    a_jobs = [train(a) for _ in range(10)]
    b_job = train(b)
    # Queued before any worker runs, so the order is the broker's alone.
    positions = [client.get(f"/v1/jobs/{j}", headers=a.headers).json()["queue_position"] for j in a_jobs]
    b_position = client.get(f"/v1/jobs/{b_job}", headers=b.headers).json()["queue_position"]
    assert b_position == 1 and positions[:3] == [0, 2, 3], (positions, b_position)

    log_path = tmp_path / "worker.log"
    worker = start_worker(settings, redis_url, log_path)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with db.read() as session:
                started = {
                    row.id: row.started_at
                    for row in session.execute(
                        select(Job.id, Job.started_at).where(Job.id.in_([*a_jobs, b_job]))
                    )
                    if row.started_at is not None
                }
            if b_job in started or sum(j in started for j in a_jobs) >= 3:
                break
            assert worker.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.3)
        else:
            pytest.fail(f"nothing started in time; worker log:\n{log_path.read_text()[-3000:]}")
        a_started_before_b = [
            j for j in a_jobs if j in started and started[j] < started.get(b_job, started[j])
        ]
        assert b_job in started, f"A's third training started before B's: {len(started)} started"
        assert len(a_started_before_b) <= 2, a_started_before_b
        print(f"B started after {len(a_started_before_b)} of A's trainings; load {os.getloadavg()}")
    finally:
        cancel_leftover_jobs(db)
        stop_worker(worker)
        client_redis = redis.Redis.from_url(redis_url)
        client_redis.delete(*priority_lists(settings.gpu_queue))  # the canceled jobs' messages
        client_redis.close()
