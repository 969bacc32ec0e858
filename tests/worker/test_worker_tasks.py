"""The thin Celery tasks for webhooks, and the embedded runner's recovery of abandoned jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Reject
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from core import jobs
from core.db import Database
from core.ids import new_id
from core.keys import get_or_create_owner
from core.migrate import upgrade_to_head
from core.models import DeliveryState, Job, JobKind, JobState, Model, WebhookDelivery
from core.storage import LocalStorage
from tests.service_fixtures import RecordingQueue
from worker import embedded, tasks
from worker.runtime import WorkerContext


def _succeeded_job_with_webhook(db: Any, owner_id: str, url: str) -> str:
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"), owner_id=owner_id, params={}, image_width=48, image_height=40, input_key="x",
            webhook_url=url, webhook_events=["model.succeeded"],
        )  # fmt: skip
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN)
        assert jobs.claim(session, job.id, "w", max_attempts=3)
        assert jobs.succeed(session, job)
        session.flush()
        return str(session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job.id)).one())


def test_sweep_dispatches_due_deliveries_and_the_task_delivers(
    db: Any, storage: Any, settings: Any, caller: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = RecordingQueue()
    monkeypatch.setattr(tasks, "_context", WorkerContext(settings, db, storage, queue))
    delivery_id = _succeeded_job_with_webhook(db, caller.owner_id, receiver.url)
    tasks.dispatch_webhooks.run()
    assert delivery_id in queue.webhooks
    tasks.deliver_webhook.run(delivery_id)
    tasks.deliver_webhook.run(delivery_id)  # a duplicate send (sweep + direct) delivers once
    (hit,) = receiver.received
    assert Webhook(caller.webhook_secret).verify(hit.body, hit.headers)["type"] == "model.succeeded"
    with db.read() as session:
        assert session.get_one(WebhookDelivery, delivery_id).state == DeliveryState.DELIVERED


def test_a_job_task_that_cannot_reach_the_database_puts_its_message_back(
    settings: Any, storage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acknowledging would drop the job's only message: the task raises Reject(requeue=True) instead, after
    retrying the claim for `infra_retry_s`."""
    down = settings.model_copy(update={"infra_retry_s": 0.5})
    nowhere = Database("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_timeout_s=2)
    monkeypatch.setattr(tasks, "_context", WorkerContext(down, nowhere, storage, RecordingQueue()))
    with pytest.raises(Reject) as rejected:
        tasks.run_job_task(new_id("job"))
    assert rejected.value.requeue is True
    nowhere.dispose()


def test_embedded_runner_requeues_jobs_a_dead_run_left_running(tmp_path: Path, settings: Any) -> None:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"  # the embedded runner's own database, as in `make run`
    upgrade_to_head(url)
    sqlite = Database(url)
    with sqlite.transaction() as session:
        owner = get_or_create_owner(session, "me")
        model = Model(
            id=new_id("mdl"), owner_id=owner.id, params={}, image_width=48, image_height=40, input_key="x"
        )
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN)
        assert jobs.claim(session, job.id, "dead-worker", max_attempts=3)
    ctx = WorkerContext(settings, sqlite, LocalStorage(tmp_path / "objects"), RecordingQueue())
    assert embedded.requeue_abandoned(ctx) == 1
    with sqlite.read() as session:
        assert session.scalar(select(Job.state).where(Job.id == job.id)) == JobState.QUEUED
    sqlite.dispose()


def test_each_task_lands_in_exactly_one_queue(settings: Any, redis_url: str) -> None:
    """With the worker's queues declared as the worker declares them, each task reaches its queue only."""
    import secrets

    import redis

    from core.models import JobKind as Kind
    from core.queue import CeleryQueue
    from worker.celery_app import make_celery

    suffix = secrets.token_hex(4)
    isolated = settings.model_copy(
        update={"broker_url": redis_url, "gpu_queue": f"gpu-q-{suffix}", "webhooks_queue": f"wh-q-{suffix}"}
    )
    worker_app = make_celery(isolated)
    with worker_app.connection_for_write() as connection:
        for queue in worker_app.amqp.queues.values():
            queue(connection.default_channel).declare()
    producer = CeleryQueue(isolated)
    producer.send_job("job_x", Kind.TRAIN, "long")
    producer.send_webhook("msg_x")
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.llen(isolated.gpu_queue) == 1 and client.llen(isolated.webhooks_queue) == 1
    finally:
        for name in (isolated.gpu_queue, isolated.webhooks_queue):
            client.delete(name, f"_kombu.binding.{name}")


def test_every_task_has_a_soft_limit_below_its_hard_limit() -> None:
    """Celery refuses to send (e.g. from beat) a task whose soft time limit exceeds its hard one."""
    from core.queue import (
        TASK_CLEANUP,
        TASK_DELIVER_WEBHOOK,
        TASK_DISPATCH_WEBHOOKS,
        TASK_FOR_KIND,
        TASK_REAP_STALE_JOBS,
    )
    from worker.celery_app import app

    for name in (
        TASK_DELIVER_WEBHOOK,
        TASK_DISPATCH_WEBHOOKS,
        TASK_REAP_STALE_JOBS,
        TASK_CLEANUP,
        *TASK_FOR_KIND.values(),
    ):
        task = app.tasks[name]
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert soft < hard, name
    assert app.conf.beat_schedule["dispatch-due-webhooks"]["task"] == TASK_DISPATCH_WEBHOOKS
    assert app.conf.beat_schedule["reap-stale-jobs"]["task"] == TASK_REAP_STALE_JOBS
    assert app.conf.beat_schedule["cleanup"]["task"] == TASK_CLEANUP
