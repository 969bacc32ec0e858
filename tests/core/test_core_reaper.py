"""Crash recovery: heartbeats, the reaper (re-queue within max_attempts, else fail with the reason), and the
attempt fence that keeps a late write from an earlier attempt out."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import select, update

from core import jobs, maintenance
from core.ids import new_id
from core.models import Job, JobEvent, JobKind, JobState, Model, WebhookDelivery, utcnow
from tests.service_fixtures import RecordingQueue


def _running_job(db: Any, owner_id: str, attempts_before: int = 0, stale_s: float = 600) -> str:
    """A train job claimed by a worker that then died: heartbeat `stale_s` seconds old."""
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"), owner_id=owner_id, params={}, image_width=48, image_height=40,
            input_key="unused", webhook_url="https://example.com/hook", webhook_events=["model.failed"],
        )  # fmt: skip
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN)
        session.execute(update(Job).where(Job.id == job.id).values(attempts=attempts_before))
        assert jobs.claim(session, job.id, "dead-worker", max_attempts=10)
        old = utcnow() - dt.timedelta(seconds=stale_s)
        session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=old))
        return job.id


def _job(db: Any, job_id: str) -> Job:
    with db.read() as session:
        return session.get_one(Job, job_id)


def _events(db: Any, job_id: str) -> list[str]:
    with db.read() as session:
        return list(
            session.scalars(select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        )


def test_stale_job_is_requeued_and_its_task_sent_again(db: Any, caller: Any, settings: Any) -> None:
    job_id = _running_job(db, caller.owner_id)
    queue = RecordingQueue()
    reaped = maintenance.reap_stale_jobs(db, queue, settings.model_copy(update={"max_attempts": 3}))
    assert job_id in reaped.requeued and (job_id, "train") in queue.jobs
    job = _job(db, job_id)
    assert job.state == JobState.QUEUED and job.attempts == 1 and job.worker is None
    assert _events(db, job_id)[-1] == "requeued"
    # The next claim is attempt 2; a second reaper pass finds nothing to do.
    assert maintenance.reap_stale_jobs(db, RecordingQueue(), settings).requeued == []
    with db.transaction() as session:  # do not leave it queued for other tests' reapers
        jobs.request_cancel(session, session.get_one(Job, job_id))


def test_fresh_heartbeat_is_left_alone(db: Any, caller: Any, settings: Any) -> None:
    job_id = _running_job(db, caller.owner_id, stale_s=0)
    with db.transaction() as session:
        assert jobs.heartbeat(session, job_id, attempt=1)
    reaped = maintenance.reap_stale_jobs(db, RecordingQueue(), settings)
    assert job_id not in reaped.requeued + reaped.failed and _job(db, job_id).state == JobState.RUNNING
    with db.transaction() as session:  # do not leave it for other tests' reapers
        jobs.fail(session, session.get_one(Job, job_id), "test over")


def test_out_of_attempts_fails_with_the_reason_and_a_webhook(db: Any, caller: Any, settings: Any) -> None:
    job_id = _running_job(db, caller.owner_id, attempts_before=2)  # this is attempt 3 of 3
    queue = RecordingQueue()
    reaped = maintenance.reap_stale_jobs(db, queue, settings.model_copy(update={"max_attempts": 3}))
    assert reaped.failed == [job_id] and queue.jobs == []
    job = _job(db, job_id)
    assert job.state == JobState.FAILED and "no heartbeat" in (job.error or "") and "3 of 3" in job.error
    with db.read() as session:
        outbox = session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id)).all()
    assert list(outbox) == queue.webhooks and len(outbox) == 1


def test_a_late_write_from_an_earlier_attempt_is_fenced_off(db: Any, caller: Any, settings: Any) -> None:
    job_id = _running_job(db, caller.owner_id)
    maintenance.reap_stale_jobs(db, RecordingQueue(), settings)
    with db.transaction() as session:
        assert jobs.claim(session, job_id, "new-worker", max_attempts=3)  # attempt 2
    with db.transaction() as session:
        job = session.get_one(Job, job_id)
        assert not jobs.heartbeat(session, job_id, attempt=1)
        assert not jobs.record_progress(session, job_id, {"percent": 99}, attempt=1)
        assert not jobs.succeed(session, job, attempt=1)
        assert jobs.heartbeat(session, job_id, attempt=2)
        assert jobs.succeed(session, job, attempt=2)
    assert _job(db, job_id).state == JobState.SUCCEEDED


def test_embedded_start_requeues_every_running_job_whatever_its_heartbeat(
    db: Any, caller: Any, settings: Any
) -> None:
    job_id = _running_job(db, caller.owner_id, stale_s=0)
    reaped = maintenance.reap_stale_jobs(db, RecordingQueue(), settings, older_than_s=0)
    assert job_id in reaped.requeued
    with db.transaction() as session:
        jobs.request_cancel(session, session.get_one(Job, job_id))


def test_worker_heartbeat_thread_stamps_and_notices_a_lost_attempt(
    db: Any, caller: Any, settings: Any, storage: Any
) -> None:
    from worker.runtime import Heartbeat, WorkerContext

    job_id = _running_job(db, caller.owner_id)
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    before = _job(db, job_id).heartbeat_at
    with Heartbeat(ctx, job_id, attempt=1, interval_s=0.05) as beat:
        time.sleep(0.3)
        after = _job(db, job_id).heartbeat_at
        assert before is not None and after is not None and after > before and not beat.lost
        with db.transaction() as session:  # the reaper took it (as if the heartbeat had stalled)
            session.execute(update(Job).where(Job.id == job_id).values(state=JobState.QUEUED.value))
        deadline = time.monotonic() + 5
        while not beat.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert beat.lost


def test_a_queued_job_whose_message_died_with_a_worker_is_sent_again(
    db: Any, caller: Any, settings: Any, redis_url: str
) -> None:
    """SIGKILL after the worker reserved the message but before it claimed the job: the message sits in
    kombu's `unacked` hash for the visibility timeout (days). The reaper sees the job queued with no live
    message and sends it again; a job whose message is waiting is left alone."""
    import secrets

    import redis

    from core.queue import CeleryQueue

    suffix = secrets.token_hex(4)
    isolated = settings.model_copy(
        update={
            "broker_url": redis_url,
            "gpu_queue": f"gpu-stranded-{suffix}",
            "interactive_queue": f"gpu-interactive-stranded-{suffix}",
        }
    )
    queue = CeleryQueue(isolated)
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"), owner_id=caller.owner_id, params={}, image_width=48, image_height=40,
            input_key="unused",
        )  # fmt: skip
        session.add(model)
        session.flush()
        waiting, stranded = (jobs.create_job(session, model, JobKind.SAMPLE) for _ in range(2))
        old = utcnow() - dt.timedelta(seconds=600)
        session.execute(update(Job).where(Job.id.in_([waiting.id, stranded.id])).values(created_at=old))
        waiting_id, stranded_id = waiting.id, stranded.id
    client = redis.Redis.from_url(redis_url)
    try:
        queue.send_job(waiting_id, JobKind.SAMPLE, "interactive")  # a sample waits in the interactive lane
        assert client.llen(isolated.interactive_queue) == 1
        assert queue.pending_job_ids(60) == {waiting_id}
        resent = maintenance.resend_stranded(db, queue, isolated)
        assert stranded_id in resent and waiting_id not in resent
        assert {waiting_id, stranded_id} <= (queue.pending_job_ids(60) or set())
    finally:
        for name in (isolated.gpu_queue, isolated.interactive_queue):
            client.delete(name, f"_kombu.binding.{name}")
        with db.transaction() as session:  # do not leave queued jobs for other tests' reapers
            for job_id in (waiting_id, stranded_id):
                jobs.request_cancel(session, session.get_one(Job, job_id))
