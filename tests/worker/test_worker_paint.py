"""The paint job on real Postgres and S3, with one tiny CPU generation model; and the service's paint words
held to the engine's."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from PIL import Image
from sqlalchemy import select

import engine
import engine.spec
from api.schemas import PaintingCreate
from core import jobs, vocabulary
from core.keys import create_key, get_or_create_owner
from core.models import Job, JobEvent, JobKind, JobState, Model
from core.results import job_file_key
from tests.service_fixtures import Caller, RecordingQueue, object_keys, scene_image, submit_job
from tests.worker.test_worker_vocabulary import bounds
from worker.kinds import RUNNERS
from worker.run import run_job
from worker.runtime import WorkerContext

TINY_GENERATION = {
    "preset": "quick",
    "mode": "generation",
    "train_stages": 3,
    "iters_per_stage": 4,
    "max_size": 32,
    "min_size": 16,
}


@pytest.fixture(scope="module")
def model(db: Any, storage: Any, settings: Any) -> Iterator[Model]:
    with db.transaction() as session:
        o = get_or_create_owner(session, f"paint-tests-{time.time_ns()}")
        owner = Caller(o.id, o.name, create_key(session, o), o.webhook_secret)
    train_job = submit_job(
        db,
        storage,
        settings,
        JobKind.TRAIN,
        owner.owner_id,
        {"seed": 1, **TINY_GENERATION},
        image=scene_image(),
    )
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    assert run_job(ctx, train_job.id) == JobState.SUCCEEDED
    with db.read() as session:
        yield session.get_one(Model, train_job.model_id)


def new_job(db: Any, storage: Any, settings: Any, model: Model, params: dict[str, Any]) -> str:
    with db.read() as session:
        fresh = session.get_one(Model, model.id)
    uploads = {"painting": scene_image(60, 50)}
    job = submit_job(
        db, storage, settings, JobKind.PAINT, model.owner_id, params, model=fresh, uploads=uploads
    )
    return str(job.id)


def job_of(db: Any, job_id: str) -> Job:
    with db.read() as session:
        return session.get_one(Job, job_id)


def test_paint_job_stores_n_images_at_the_models_size(
    model: Model, db: Any, storage: Any, settings: Any
) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    job_id = new_job(db, storage, settings, model, {"stage": 1, "quantize": True, "n": 3, "seed": 3})
    assert run_job(ctx, job_id) == JobState.SUCCEEDED, job_of(db, job_id).error
    job = job_of(db, job_id)
    assert job.result is not None
    assert job.result["files"] == ["paint_0.png", "paint_1.png", "paint_2.png"] and job.result["stage"] == 1
    top_h, top_w = job.result["height"], job.result["width"]
    assert max(top_h, top_w) == 32
    pictures = []
    for name in job.result["files"]:
        with Image.open(io.BytesIO(storage.get(job_file_key(job, name)))) as picture:
            assert picture.format == "PNG" and picture.size == (top_w, top_h)
            pictures.append(picture.tobytes())
    assert len(set(pictures)) == 3  # three noise draws, three images
    with db.read() as session:
        events = session.scalars(select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        assert list(events) == ["queued", "started", "succeeded"]


def test_the_result_is_the_engines_for_the_same_seed(
    model: Model, db: Any, storage: Any, settings: Any
) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    job_id = new_job(db, storage, settings, model, {"stage": 2, "quantize": False, "n": 1, "seed": 11})
    assert run_job(ctx, job_id) == JobState.SUCCEEDED
    job = job_of(db, job_id)
    trained = engine.checkpoint.from_bytes(storage.get(model.checkpoint_key), device="cpu")
    painting = engine.load_image(storage.get(jobs_painting_key(model, job_id)))
    expected = engine.paint_to_image(trained, painting, stage=2, n=1, rng=engine.make_rng(11))
    stored = engine.load_image(storage.get(job_file_key(job, "paint_0.png")))
    assert torch.allclose(stored, expected, atol=1 / 127)  # PNG rounding


def jobs_painting_key(model: Model, job_id: str) -> str:
    from core.storage import job_object_key

    return job_object_key(model.id, job_id, vocabulary.PAINTING_FILE)


def test_a_stage_the_model_does_not_have_fails_the_job_with_the_engines_reason(
    model: Model, db: Any, storage: Any, settings: Any
) -> None:
    """The API refuses it first (tests/api); a job that reaches the worker anyway fails cleanly."""
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    with db.read() as session:
        fresh = session.get_one(Model, model.id)
        job = jobs.create_job(session, fresh, JobKind.PAINT, {"stage": 7, "n": 1, "seed": 0})
        storage.put(jobs_painting_key(model, job.id), scene_image(), "image/png")
        session.commit()
        job_id = job.id
    assert run_job(ctx, job_id) == JobState.FAILED
    failed = job_of(db, job_id)
    assert "stage must be between 1 and 2" in (failed.error or "")
    assert [k for k in object_keys(storage, f"models/{model.id}/jobs/{job_id}/") if "/a" in k] == []


def test_a_missing_painting_fails_the_job(model: Model, db: Any, storage: Any, settings: Any) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    with db.read() as session:
        job = jobs.create_job(session, session.get_one(Model, model.id), JobKind.PAINT, {"stage": 1})
        session.commit()
        job_id = job.id
    assert run_job(ctx, job_id) == JobState.FAILED
    assert "missing from storage" in (job_of(db, job_id).error or "")


def test_the_request_bounds_are_the_engines() -> None:
    """The words themselves are imported from engine.spec; the schema's bounds and the file names follow."""
    assert JobKind.PAINT in RUNNERS
    assert vocabulary.PAINT_DRAWS_MAX <= engine.spec.PAINT_MAX_DRAWS
    assert len(vocabulary.PAINT_FILES) == vocabulary.PAINT_DRAWS_MAX
    # animation: its stage 0 reconstructs from noise, so its head never read an image (engine/spec/paint.py)
    assert set(engine.spec.PAINT_MODES) == set(engine.MODES) - {"harmonization", "editing", "animation"}
    assert bounds(PaintingCreate, "n") == (1, vocabulary.PAINT_DRAWS_MAX)
    assert bounds(PaintingCreate, "stage") == (engine.spec.PAINT_STAGE_MIN, vocabulary.MAX_STAGE_INDEX)
