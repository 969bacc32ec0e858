"""UnitOfWork: effects (a new job's task, a new webhook) leave only after the commit, and exactly then."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core import jobs
from core.ids import new_id
from core.models import Job, JobKind, Model, WebhookDelivery
from core.queue import QueueUnavailable
from core.unit_of_work import EnqueueFailed, UnitOfWork
from tests.service_fixtures import RecordingQueue, scene_image


def add_model(session: Any, owner_id: str, webhook_url: str | None = None) -> Model:
    model = Model(
        id=new_id("mdl"), owner_id=owner_id, params={}, image_width=48, image_height=40, input_key="x",
        webhook_url=webhook_url, webhook_events=["model.canceled", "job.canceled"],
    )  # fmt: skip
    session.add(model)
    session.flush()
    return model


def test_a_new_jobs_task_is_sent_after_the_commit_not_before(db: Any, caller: Any) -> None:
    queue = RecordingQueue()
    with UnitOfWork(db, queue) as uow:
        job = jobs.create_job(uow.session, add_model(uow.session, caller.owner_id), JobKind.TRAIN)
        uow.session.flush()
        assert queue.jobs == []  # flushed is not committed: a worker must not find it missing
        uow.commit()
        assert queue.jobs == [(job.id, "train")]


def test_a_transaction_that_does_not_commit_sends_nothing_and_cleans_up(db: Any, caller: Any) -> None:
    queue, cleaned = RecordingQueue(), []
    with pytest.raises(RuntimeError), UnitOfWork(db, queue) as uow:
        uow.on_rollback(lambda: cleaned.append("objects deleted"))
        job = jobs.create_job(uow.session, add_model(uow.session, caller.owner_id), JobKind.TRAIN)
        uow.session.flush()
        raise RuntimeError("storage failed half-way")
    assert queue.jobs == [] and cleaned == ["objects deleted"]
    with db.read() as session:
        assert session.get(Job, job.id) is None


def test_a_committed_transaction_keeps_its_objects(db: Any, caller: Any) -> None:
    cleaned: list[str] = []
    with UnitOfWork(db, RecordingQueue()) as uow:
        uow.on_rollback(lambda: cleaned.append("objects deleted"))
        add_model(uow.session, caller.owner_id)
        uow.commit()
    assert cleaned == []


def test_webhooks_of_a_state_change_are_sent_right_after_its_commit(db: Any, caller: Any) -> None:
    queue = RecordingQueue()
    with UnitOfWork(db, queue) as uow:
        model = add_model(uow.session, caller.owner_id, webhook_url="https://example.com/hook")
        job = jobs.create_job(uow.session, model, JobKind.TRAIN)
        uow.commit()
    with UnitOfWork(db, queue) as uow:
        assert jobs.request_cancel(uow.session, uow.session.get_one(Job, job.id))  # queued -> canceled
        uow.commit()
    with db.read() as session:
        delivery = session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job.id)).one()
    assert queue.webhooks == [delivery]


class DownQueue(RecordingQueue):
    def send_job(self, job_id: str, kind: Any, priority: int = 0) -> None:
        raise QueueUnavailable("broker down")


def test_a_task_that_cannot_be_sent_is_reported_after_the_commit(db: Any, caller: Any) -> None:
    with UnitOfWork(db, DownQueue()) as uow:
        job = jobs.create_job(uow.session, add_model(uow.session, caller.owner_id), JobKind.TRAIN)
        with pytest.raises(EnqueueFailed) as failed:
            uow.commit()
    assert failed.value.job_ids == [job.id]
    with db.read() as session:
        assert session.get(Job, job.id) is not None  # committed: the caller decides what to do with it


def test_canceling_a_queued_job_over_http_sends_its_webhook_at_once(
    client: Any, caller: Any, queue: RecordingQueue, db: Any
) -> None:
    created = client.post(
        "/v1/models",
        headers=caller.headers,
        data={
            "preset": "quick",
            "webhook_url": "https://example.com/hook",
            "webhook_events": "model.canceled",
        },
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert created.status_code == 202, created.text
    canceled = client.post(f"/v1/models/{created.json()['id']}/cancel", headers=caller.headers)
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    with db.read() as session:
        delivery = session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.model_id == created.json()["id"])
        ).one()
    assert queue.webhooks == [delivery]  # not left to the 5-s sweep
