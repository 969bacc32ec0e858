"""commit_result: the one way an attempt makes its result visible, and what a losing attempt cleans up."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from core import jobs
from core.ids import new_id
from core.models import Job, JobKind, JobState, Model, Sample, utcnow
from core.storage import checkpoint_key, job_output_key, sample_key
from tests.service_fixtures import RecordingQueue, object_keys
from worker.outcomes import commit_result
from worker.runtime import WorkerContext


def running_job(db: Any, owner_id: str) -> Job:
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"), owner_id=owner_id, params={}, image_width=48, image_height=40, input_key="x"
        )
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.SAMPLE, {"n": 1})
        assert jobs.claim(session, job.id, "attempt-1", max_attempts=3)
    with db.read() as session:
        return session.get_one(Job, job.id)


def attempt_outputs(storage: Any, job: Job) -> tuple[list[str], list[str], list[Sample]]:
    """What attempt `job.attempts` stored: keys it alone owns (a new sample, its own job file), and a key
    every attempt of the job writes (the model's checkpoint)."""
    sample_id = new_id("smp")
    owned = [
        sample_key(job.model_id, sample_id),
        job_output_key(job.model_id, job.id, job.attempts, "result.png"),
    ]
    shared = [checkpoint_key(job.model_id)]
    for key in owned + shared:
        storage.put(key, b"bytes", "application/octet-stream")
    row = Sample(
        id=sample_id, owner_id=job.owner_id, model_id=job.model_id, job_id=job.id, key=owned[0],
        width=1, height=1, size_bytes=5, is_preview=False, created_at=utcnow(),
    )  # fmt: skip
    return owned, shared, [row]


def test_winning_attempt_commits_rows_result_and_model_update(
    db: Any, storage: Any, settings: Any, caller: Any
) -> None:
    job = running_job(db, caller.owner_id)
    queue = RecordingQueue()
    owned, shared, rows = attempt_outputs(storage, job)

    def point_at_checkpoint(model: Model) -> None:
        model.checkpoint_key = shared[0]

    state = commit_result(
        WorkerContext(settings, db, storage, queue), job, owned_keys=owned, shared_keys=shared, rows=rows,
        result={"attempt": 1, "files": ["result.png"]}, update_model=point_at_checkpoint,
    )  # fmt: skip
    assert state == JobState.SUCCEEDED
    with db.read() as session:
        fresh = session.get_one(Job, job.id)
        assert fresh.state == JobState.SUCCEEDED and fresh.result == {"attempt": 1, "files": ["result.png"]}
        assert session.get_one(Model, job.model_id).checkpoint_key == shared[0]
        assert session.scalars(select(Sample.id).where(Sample.job_id == job.id)).all() == [rows[0].id]
    assert set(owned + shared) <= set(object_keys(storage, f"models/{job.model_id}/"))


def test_losing_attempt_deletes_only_what_it_owned(db: Any, storage: Any, settings: Any, caller: Any) -> None:
    """Attempt 1 was re-queued by a reaper and attempt 2 claimed the job: attempt 1's late commit loses."""
    first = running_job(db, caller.owner_id)
    owned, shared, rows = attempt_outputs(storage, first)
    with db.transaction() as session:
        session.execute(update(Job).where(Job.id == first.id).values(state=JobState.QUEUED.value))
        assert jobs.claim(session, first.id, "attempt-2", max_attempts=3)
    state = commit_result(
        WorkerContext(settings, db, storage, RecordingQueue()), first,
        owned_keys=owned, shared_keys=shared, rows=rows, result={"attempt": 1, "files": ["result.png"]},
    )  # fmt: skip
    assert state == JobState.RUNNING  # attempt 2's job, untouched
    keys = set(object_keys(storage, f"models/{first.model_id}/"))
    assert not keys & set(owned) and set(shared) <= keys
    with db.read() as session:
        assert session.get_one(Job, first.id).result is None
        assert session.scalars(select(Sample).where(Sample.job_id == first.id)).all() == []


def test_attempt_of_a_canceled_job_discards_its_output(
    db: Any, storage: Any, settings: Any, caller: Any
) -> None:
    job = running_job(db, caller.owner_id)
    owned, shared, rows = attempt_outputs(storage, job)
    with db.transaction() as session:
        assert jobs.mark_canceled(session, session.get_one(Job, job.id))
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    state = commit_result(ctx, job, owned_keys=owned, shared_keys=shared, rows=rows)
    assert state == JobState.CANCELED
    assert set(object_keys(storage, f"models/{job.model_id}/")) == set(shared)
