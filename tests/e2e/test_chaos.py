"""Fault test: a real Celery GPU worker training tiny jobs is killed with SIGKILL (with its pool children) at
random moments, ROUNDS times, and restarted each time. Beat (in a separate service worker that is not killed)
runs the crash reaper and the webhook sweep with short intervals.

In the end: every job is `succeeded` or `failed` with a reason, none is left queued/running, none finished
training twice (one "job ended ... succeeded" log line and exactly 8 previews per succeeded model), and every
job's webhook reached the receiver, deduplicated by `webhook-id` (sends per id are counted and reported).

`python bench/chaos.py --rounds 100 --jobs 12` runs the same test with more rounds (CONSINGAN_CHAOS_*). Its
waits have no wall-clock budget: they fail after STALL_S seconds in which nothing progressed.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from core.models import DeliveryState, Job, JobEvent, Sample, WebhookDelivery
from core.queue import CeleryQueue, priority_lists
from tests.service_fixtures import RUN_ID, cancel_leftover_jobs, scene_image, settings_env

pytestmark = pytest.mark.e2e

ROUNDS = int(os.environ.get("CONSINGAN_CHAOS_ROUNDS", "20"))
JOBS = int(os.environ.get("CONSINGAN_CHAOS_JOBS", "4"))
SEED = int(os.environ.get("CONSINGAN_CHAOS_SEED", str(random.SystemRandom().randrange(10**6))))
MAX_KILL_DELAY_S = float(os.environ.get("CONSINGAN_CHAOS_MAX_DELAY_S", "2.0"))
TRAINING = {
    "preset": "quick",
    "train_stages": "2",
    "iters_per_stage": "20",
    "max_size": "32",
    "min_size": "16",
}
FINAL = {"succeeded", "failed", "canceled"}
# The waits follow progress, not the wall clock: they fail only after this long without any job (or webhook)
# changing state, attempt, stage or reported iteration. A loaded machine is slow; a stuck one is red.
STALL_S = float(os.environ.get("CONSINGAN_CHAOS_STALL_S", "90"))


class Stillness:
    """Seconds since the watched snapshot last changed."""

    def __init__(self) -> None:
        self.last: object = None
        self.changed_at = time.monotonic()

    def seconds(self, snapshot: object) -> float:
        now = time.monotonic()
        if snapshot != self.last:
            self.last, self.changed_at = snapshot, now
        return now - self.changed_at


def _start(env: dict[str, str], args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path, marks_before: int) -> None:
    deadline = time.monotonic() + 90
    while log_path.read_bytes().count(b" ready.") <= marks_before:
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.05)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """kill -9 the worker and its pool children (its own session, so its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            _kill_group(process)


def _forget_unacked(redis_url: str, queue: str) -> None:
    """Killed workers leave their reserved message in kombu's `unacked` hash (redelivered only after the
    visibility timeout, days); drop ours so the shared Redis does not keep them."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for tag, raw in client.hscan_iter("unacked"):
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.delete(*priority_lists(queue), f"_kombu.binding.{queue}")


def test_kill_minus_nine_the_worker_repeatedly(
    settings: Any, redis_url: str, storage: Any, db: Any, make_client: Any, caller: Any, receiver: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    rng = random.Random(SEED)
    chaos = settings.model_copy(
        update={
            "broker_url": redis_url,
            "gpu_queue": f"gpu-chaos-{RUN_ID}",
            "webhooks_queue": f"webhooks-chaos-{RUN_ID}",
            "heartbeat_interval_s": 0.5,
            "heartbeat_timeout_s": 3.0,
            "reaper_interval_s": 1.0,
            "webhook_sweep_interval_s": 1.0,
            "max_attempts": 5,
            "progress_interval_s": 0.5,
        }
    )
    cancel_leftover_jobs(db)  # the reaper would otherwise run other tests' stranded jobs
    env = {**os.environ, **settings_env(chaos)}
    gpu_log, service_log = tmp_path / "gpu.log", tmp_path / "service.log"
    common = ["--without-gossip", "--without-mingle", "--loglevel=INFO"]
    service = _start(
        env,
        ["worker", "-Q", chaos.webhooks_queue, "-B", "--schedule", str(tmp_path / "beat-schedule"),
         "--concurrency=2", "--max-tasks-per-child=1000", "-n", f"chaos-svc-{RUN_ID}@%h", *common],
        service_log,
    )  # fmt: skip
    gpu_args = ["worker", "-Q", chaos.gpu_queue, "--pool=prefork", "--concurrency=1"]
    gpu_args += ["-n", f"chaos-gpu-{RUN_ID}@%h", *common]
    gpu: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        client = make_client(queue=CeleryQueue(chaos))
        model_ids = []
        for i in range(JOBS):
            response = client.post(
                "/v1/models",
                headers=caller.headers,
                data={**TRAINING, "seed": str(i), "webhook_url": receiver.url,
                      "webhook_events": "model.succeeded,model.failed"},
                files={"image": ("scene.png", scene_image(48, 40), "image/png")},
            )  # fmt: skip
            assert response.status_code == 202, response.text
            model_ids.append(response.json()["id"])

        kill_states: list[int] = []
        for _ in range(ROUNDS):
            marks = gpu_log.read_bytes().count(b" ready.") if gpu_log.exists() else 0
            gpu = _start(env, gpu_args, gpu_log)
            _wait_ready(gpu, gpu_log, marks)
            time.sleep(rng.uniform(0.0, MAX_KILL_DELAY_S))
            with db.read() as session:
                running = session.scalar(
                    select(func.count()).where(Job.model_id.in_(model_ids), Job.state == "running")
                )
            kill_states.append(int(running or 0))
            _kill_group(gpu)

        gpu = _start(env, gpu_args, gpu_log)  # the last one lives
        stillness = Stillness()
        while True:
            with db.read() as session:
                jobs = list(session.scalars(select(Job).where(Job.model_id.in_(model_ids))))
            if all(j.state in FINAL for j in jobs):
                break
            progress = [(j.id, j.state, j.attempts, j.stages_done, json.dumps(j.progress)) for j in jobs]
            assert stillness.seconds(progress) < STALL_S, (
                f"no job progressed for {STALL_S:.0f} s",
                [(j.id, j.state, j.attempts) for j in jobs],
                gpu_log.read_text()[-4000:],
                service_log.read_text()[-2000:],
            )
            time.sleep(0.5)

        # Every job ended, with a reason when it failed.
        assert {j.state for j in jobs} <= {"succeeded", "failed"}, [(j.id, j.state) for j in jobs]
        assert all(j.error for j in jobs if j.state == "failed")
        # None finished training twice: at most one success line in all the worker logs, exactly 8 previews
        # (a second completion would add 8 more or have them discarded by the attempt fence), one final event.
        log_text = gpu_log.read_text()
        with db.read() as session:
            for job in jobs:
                successes = len(re.findall(rf"job ended .*job_id={job.id}.*state=succeeded", log_text))
                previews = session.scalar(select(func.count()).where(Sample.job_id == job.id))
                finals = session.scalar(
                    select(func.count()).where(JobEvent.job_id == job.id, JobEvent.type.in_(FINAL))
                )
                expected = 1 if job.state == "succeeded" else 0
                # The log line may be missing: a kill can land between the commit and the log.
                assert successes <= expected and (previews, finals) == (8 * expected, 1), job.id

        # Each job's webhook delivered; the receiver dedups by webhook-id and counts the sends.
        stillness = Stillness()
        while True:
            with db.read() as session:
                deliveries = list(
                    session.scalars(select(WebhookDelivery).where(WebhookDelivery.model_id.in_(model_ids)))
                )
            if len(deliveries) == JOBS and all(d.state == DeliveryState.DELIVERED for d in deliveries):
                break
            assert stillness.seconds([(d.id, d.state, d.attempts) for d in deliveries]) < STALL_S, (
                f"no webhook delivery progressed for {STALL_S:.0f} s",
                [(d.id, d.state, d.last_error) for d in deliveries],
            )
            time.sleep(0.5)
        sends = collections.Counter(hit.headers["webhook-id"] for hit in receiver.received)
        by_id = {hit.headers["webhook-id"]: hit for hit in receiver.received}
        assert set(sends) == {d.id for d in deliveries}
        assert sorted(d.model_id for d in deliveries) == sorted(model_ids)  # one message per model
        state_of = {j.model_id: j.state for j in jobs}
        for delivery in deliveries:
            payload = Webhook(caller.webhook_secret).verify(
                by_id[delivery.id].body, by_id[delivery.id].headers
            )
            assert payload["type"] == f"model.{state_of[delivery.model_id]}"

        with db.read() as session:
            requeues = session.scalar(
                select(func.count()).where(
                    JobEvent.job_id.in_([j.id for j in jobs]), JobEvent.type == "requeued"
                )
            )
        summary = {
            "seed": SEED,
            "rounds": ROUNDS,
            "jobs": JOBS,
            "kills_while_a_job_ran": sum(1 for k in kill_states if k),
            "succeeded": sum(j.state == "succeeded" for j in jobs),
            "failed": sum(j.state == "failed" for j in jobs),
            "attempts": sorted(j.attempts for j in jobs),
            "requeued_events": requeues,
            "resumed_from_snapshot": log_text.count("resuming training"),
            "webhook_ids": len(sends),
            "webhook_sends": sum(sends.values()),
            "seconds": round(time.monotonic() - started, 1),
        }
        print("\nchaos summary: " + json.dumps(summary))
    finally:
        if gpu is not None:
            _stop_group(gpu)
        _stop_group(service)
        _forget_unacked(redis_url, chaos.gpu_queue)
        _forget_unacked(redis_url, chaos.webhooks_queue)
