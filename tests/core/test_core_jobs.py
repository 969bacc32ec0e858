"""The state machine: every transition is one conditional UPDATE with exactly one winner."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from core import jobs
from core.ids import new_id
from core.models import Job, JobEvent, JobKind, JobState, Model, WebhookDelivery


def _model_and_job(db: Any, owner_id: str, webhook_url: str | None = None) -> tuple[str, str]:
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"),
            owner_id=owner_id,
            params={},
            image_width=48,
            image_height=40,
            input_key="unused",
            webhook_url=webhook_url,
            webhook_events=["model.succeeded", "model.canceled"],
        )
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN)
        return model.id, job.id


def _state(db: Any, job_id: str) -> str:
    with db.read() as session:
        return session.get_one(Job, job_id).state


def test_claim_has_one_winner_among_concurrent_workers(db: Any, caller: Any) -> None:
    _, job_id = _model_and_job(db, caller.owner_id)
    barrier = threading.Barrier(4)
    wins: list[bool] = []

    def worker(n: int) -> None:
        barrier.wait()
        with db.transaction() as session:
            wins.append(jobs.claim(session, job_id, f"w{n}", max_attempts=3))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True]
    assert _state(db, job_id) == JobState.RUNNING


def test_cancel_queued_job_is_immediate_and_blocks_claim(db: Any, caller: Any) -> None:
    _, job_id = _model_and_job(db, caller.owner_id)
    with db.transaction() as session:
        assert jobs.request_cancel(session, session.get_one(Job, job_id))
    with db.transaction() as session:
        assert not jobs.claim(session, job_id, "w", max_attempts=3)
    assert _state(db, job_id) == JobState.CANCELED


def test_cancel_running_job_sets_the_flag_then_worker_finishes_it(db: Any, caller: Any) -> None:
    _, job_id = _model_and_job(db, caller.owner_id, webhook_url="https://example.com/hook")
    with db.transaction() as session:
        assert jobs.claim(session, job_id, "w", max_attempts=3)
    with db.transaction() as session:
        assert jobs.request_cancel(session, session.get_one(Job, job_id))
    with db.transaction() as session:
        assert jobs.cancel_requested(session, job_id)
        assert jobs.mark_canceled(session, session.get_one(Job, job_id))
    with db.transaction() as session:  # a finish racing the cancel loses
        assert not jobs.succeed(session, session.get_one(Job, job_id))
    with db.read() as session:
        types = list(
            session.scalars(select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        )
        outbox = list(
            session.scalars(select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job_id))
        )
    assert types == ["queued", "started", "cancel_requested", "canceled"]
    assert outbox == ["model.canceled"]  # written with the state change, exactly once


def test_claim_past_max_attempts_fails_the_job(db: Any, caller: Any) -> None:
    _, job_id = _model_and_job(db, caller.owner_id)
    with db.transaction() as session:
        session.get_one(Job, job_id).attempts = 3
    with db.transaction() as session:
        assert not jobs.claim(session, job_id, "w", max_attempts=3)
    with db.read() as session:
        job = session.get_one(Job, job_id)
        assert job.state == JobState.FAILED and "3 attempts" in (job.error or "")


def test_progress_is_only_recorded_for_running_jobs(db: Any, caller: Any) -> None:
    _, job_id = _model_and_job(db, caller.owner_id)
    with db.transaction() as session:
        assert not jobs.record_progress(session, job_id, {"percent": 1.0})
        assert jobs.claim(session, job_id, "w", max_attempts=3)
        assert jobs.record_progress(session, job_id, {"percent": 50.0})
    with db.read() as session:
        job = session.get_one(Job, job_id)
        assert job.progress == {"percent": 50.0} and job.heartbeat_at is not None
