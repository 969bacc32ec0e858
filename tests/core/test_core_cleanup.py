"""Data lifecycle: orphaned objects (no row) are swept after a grace period, drawn samples expire, expired
Idempotency-Key records go, and a model's own objects stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import jobs, maintenance
from core.ids import new_id
from core.models import IdempotencyRecord, JobKind, Model, Sample, utcnow
from core.storage import LocalStorage, input_key, job_output_key, sample_key, stage_key, stage_preview_key
from core.vocabulary import RESULT_FILE
from tests.service_fixtures import object_keys


def _model(db: Any, storage: Any, owner_id: str) -> str:
    model_id = new_id("mdl")
    storage.put(input_key(model_id), b"png", "image/png")
    with db.transaction() as session:
        session.add(
            Model(
                id=model_id,
                owner_id=owner_id,
                params={},
                image_width=48,
                image_height=40,
                input_key=input_key(model_id),
            )
        )
    return model_id


def test_orphaned_objects_go_after_the_grace_period_rows_keep_theirs(
    db: Any, storage: Any, caller: Any
) -> None:
    kept = _model(db, storage, caller.owner_id)
    orphan = new_id("mdl")
    storage.put(input_key(orphan), b"png", "image/png")
    storage.put(f"jobs/{new_id('job')}/result.png", b"png", "image/png")
    # Within the grace period (an upload in flight writes objects before its row): nothing goes.
    assert maintenance.remove_orphaned_objects(db, storage, dt.timedelta(hours=1)) == 0
    assert storage.exists(input_key(orphan))
    removed = maintenance.remove_orphaned_objects(db, storage, dt.timedelta(seconds=-1))
    assert removed >= 2 and not storage.exists(input_key(orphan))
    assert object_keys(storage, f"models/{kept}/") == [input_key(kept)]


def test_objects_of_an_attempt_that_lost_its_commit_go_the_winners_stay(
    db: Any, storage: Any, caller: Any
) -> None:
    """An attempt whose success commit was lost while storage was away too could not delete its previews or
    outputs: previews without a sample row, and outputs of an attempt the ended job does not point at. What
    the model owns without a row (its stage snapshots and stage previews) and what the job's result points at
    stay."""
    model_id = _model(db, storage, caller.owner_id)
    with db.transaction() as session:
        job = jobs.create_job(session, session.get_one(Model, model_id), JobKind.HARMONIZE)
        job.state, job.attempts, job.result = "succeeded", 2, {"attempt": 2, "files": [RESULT_FILE]}
        job_id = job.id
    lost_preview = sample_key(model_id, new_id("smp"))
    lost_output = job_output_key(model_id, job_id, 1, RESULT_FILE)
    won_output = job_output_key(model_id, job_id, 2, RESULT_FILE)
    model_owned = [stage_key(model_id, 0), stage_preview_key(model_id, 0), stage_preview_key(model_id, 1)]
    for key in (lost_preview, lost_output, won_output, *model_owned):
        storage.put(key, b"png", "image/png")
    assert maintenance.remove_orphaned_objects(db, storage, dt.timedelta(hours=1)) == 0
    assert maintenance.remove_orphaned_objects(db, storage, dt.timedelta(seconds=-1)) == 2
    assert not storage.exists(lost_preview) and not storage.exists(lost_output)
    assert storage.exists(won_output) and storage.exists(input_key(model_id))
    assert all(storage.exists(key) for key in model_owned)


def test_the_local_backend_lists_and_sweeps_the_same_way(db: Any, caller: Any, tmp_path: Path) -> None:
    local = LocalStorage(tmp_path)
    kept = _model(db, local, caller.owner_id)
    orphan = new_id("mdl")
    local.put(input_key(orphan), b"png", "image/png")
    assert maintenance.remove_orphaned_objects(db, local, dt.timedelta(seconds=-1)) == 1
    assert [key for key, _ in local.list_objects("models/")] == [input_key(kept)]


def test_drawn_samples_expire_previews_stay(db: Any, storage: Any, caller: Any, settings: Any) -> None:
    model_id = _model(db, storage, caller.owner_id)
    old = utcnow() - dt.timedelta(days=40)
    ids = {"preview": new_id("smp"), "drawn": new_id("smp"), "fresh": new_id("smp")}
    with db.transaction() as session:
        job = jobs.create_job(session, session.get_one(Model, model_id), JobKind.SAMPLE)
        for name, sample_id in ids.items():
            storage.put(sample_key(model_id, sample_id), b"png", "image/png")
            session.add(
                Sample(
                    id=sample_id,
                    owner_id=caller.owner_id,
                    model_id=model_id,
                    job_id=job.id,
                    key=sample_key(model_id, sample_id),
                    width=4,
                    height=4,
                    size_bytes=3,
                    is_preview=name == "preview",
                    created_at=utcnow() if name == "fresh" else old,
                )
            )
        session.add(
            IdempotencyRecord(
                owner_id=caller.owner_id,
                key="old",
                request_hash="h",
                status_code=202,
                response_body={},
                created_at=old,
            )
        )
    cleaned = maintenance.cleanup(db, storage, settings.model_copy(update={"sample_retention_s": 30 * 86400}))
    assert cleaned.expired_samples >= 1 and cleaned.expired_idempotency_records >= 1
    with db.read() as session:
        left = set(session.scalars(select(Sample.id).where(Sample.model_id == model_id)))
        assert session.scalar(select(IdempotencyRecord.id).where(IdempotencyRecord.key == "old")) is None
    assert left == {ids["preview"], ids["fresh"]}
    assert not storage.exists(sample_key(model_id, ids["drawn"]))
    assert storage.exists(sample_key(model_id, ids["preview"]))
