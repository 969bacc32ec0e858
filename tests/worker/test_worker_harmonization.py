"""The harmonize job on real Postgres and S3, with one tiny CPU harmonization model."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from PIL import Image
from sqlalchemy import select

import engine
from core import jobs, service
from core.images import validate_image
from core.keys import create_key, get_or_create_owner
from core.models import Job, JobEvent, JobKind, JobState, Model, WebhookDelivery
from core.results import job_file_key
from core.services import Services
from core.storage import job_object_key
from engine.spec import request_config
from tests.service_fixtures import Caller, RecordingQueue, object_keys, scene_image, submit_job
from worker.run import run_job
from worker.runtime import WorkerContext

LIMITS = {"max_pixels": 40_000_000, "max_side": 8192, "min_side": 16}
TINY_HARMONIZATION = {
    "preset": "quick",
    "mode": "harmonization",
    "train_stages": 2,
    "iters_per_stage": 4,
    "max_size": 32,
    "min_size": 16,
}
NAIVE_SIZE = (56, 44)  # not the training image's 48x40: the result comes back at the naive image's size


def mask_png(
    size: tuple[int, int] = NAIVE_SIZE, box: tuple[int, int, int, int] | None = (20, 15, 34, 28)
) -> bytes:
    image = Image.new("L", size, 0)
    if box:
        image.paste(255, box)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def model(db: Any, storage: Any, settings: Any) -> Iterator[Model]:
    with db.transaction() as session:
        o = get_or_create_owner(session, f"harmonize-tests-{time.time_ns()}")
        owner = Caller(o.id, o.name, create_key(session, o), o.webhook_secret)
    train_job = submit_job(
        db, storage, settings, JobKind.TRAIN, owner.owner_id, {"seed": 1, **TINY_HARMONIZATION},
        image=scene_image(), webhook_url="https://example.com/hook",
        webhook_events=("job.succeeded", "job.failed"),
    )  # fmt: skip
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    assert run_job(ctx, train_job.id) == JobState.SUCCEEDED
    with db.read() as session:
        yield session.get_one(Model, train_job.model_id)


def new_job(
    db: Any, storage: Any, settings: Any, model: Model, params: dict[str, Any], mask: bytes | None = None
) -> str:
    """Through the service when the inputs are valid; straight to the table when a test needs bad ones."""
    naive = validate_image(scene_image(*NAIVE_SIZE), **LIMITS)
    with db.read() as session:
        fresh = session.get_one(Model, model.id)
    if mask is None:
        uploads = {"naive": scene_image(*NAIVE_SIZE), "mask": mask_png()}
        job = submit_job(
            db, storage, settings, JobKind.HARMONIZE, model.owner_id, params, model=fresh, uploads=uploads
        )
        return str(job.id)
    with db.read() as session:
        job = jobs.create_job(session, fresh, JobKind.HARMONIZE, params)
        storage.put(job_object_key(model.id, job.id, "naive.png"), naive.png, "image/png")
        storage.put(job_object_key(model.id, job.id, "mask.png"), mask, "image/png")
        session.commit()
        return job.id


def job_of(db: Any, job_id: str) -> Job:
    with db.read() as session:
        return session.get_one(Job, job_id)


def test_model_trained_in_harmonization_mode(model: Model) -> None:
    assert model.train_config is not None
    assert model.train_config["mode"] == "harmonization" and model.train_config["batch_norm"] is True
    assert model.train_config["train_stages"] == 2


def test_result_has_the_naive_image_size(model: Model, db: Any, storage: Any, settings: Any) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    job_id = new_job(db, storage, settings, model, {"stage": 1, "fine_tune": False, "seed": 3})
    assert run_job(ctx, job_id) == JobState.SUCCEEDED, job_of(db, job_id).error
    job = job_of(db, job_id)
    with Image.open(io.BytesIO(storage.get(job_file_key(job, "result.png")))) as result:
        assert result.format == "PNG" and result.mode == "RGB" and result.size == NAIVE_SIZE
    keys = set(object_keys(storage, f"models/{model.id}/jobs/{job_id}/"))
    assert job.result is not None and job.result["files"] == ["result.png"]
    assert not any(key.endswith("checkpoint.safetensors") for key in keys)
    with db.read() as session:
        events = session.scalars(select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        outbox = session.scalars(select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job_id))
        assert list(events) == ["queued", "started", "succeeded"] and list(outbox) == ["job.succeeded"]


def test_fine_tuning_stores_a_checkpoint_that_loads(
    model: Model, db: Any, storage: Any, settings: Any
) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    job_id = new_job(
        db, storage, settings, model, {"stage": 0, "fine_tune": True, "fine_tune_iters": 3, "seed": 4}
    )
    assert run_job(ctx, job_id) == JobState.SUCCEEDED, job_of(db, job_id).error
    job = job_of(db, job_id)
    assert job.progress is not None and job.progress["percent"] == pytest.approx(100.0)
    assert job.progress["iters_per_stage"] == 3
    tuned = engine.checkpoint.from_bytes(storage.get(job_file_key(job, "checkpoint.safetensors")))
    assert model.checkpoint_key is not None
    original = engine.checkpoint.from_bytes(storage.get(model.checkpoint_key))
    assert tuned.is_complete and tuned.config == original.config
    before, after = original.generator.state_dict(), tuned.generator.state_dict()
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    with Image.open(io.BytesIO(storage.get(job_file_key(job, "result.png")))) as result:
        assert result.size == NAIVE_SIZE


@pytest.mark.parametrize(
    ("mask", "reason"),
    [(mask_png(size=(40, 40)), "same size"), (mask_png(box=None), "empty")],
    ids=["mask-of-another-size", "empty-mask"],
)
def test_engine_value_error_fails_the_job_with_its_reason(
    mask: bytes, reason: str, model: Model, db: Any, storage: Any, settings: Any
) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    job_id = new_job(db, storage, settings, model, {"stage": 0, "fine_tune": False, "seed": 1}, mask=mask)
    assert run_job(ctx, job_id) == JobState.FAILED
    assert reason in (job_of(db, job_id).error or "")
    inputs = {job_object_key(model.id, job_id, name) for name in ("naive.png", "mask.png")}
    assert set(object_keys(storage, f"models/{model.id}/jobs/{job_id}/")) == inputs  # no result written
    with db.read() as session:
        outbox = session.scalars(select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job_id))
        assert list(outbox) == ["job.failed"]


def test_cancel_stops_fine_tuning(model: Model, db: Any, storage: Any, settings: Any) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    job_id = new_job(
        db, storage, settings, model, {"stage": 0, "fine_tune": True, "fine_tune_iters": 5000, "seed": 5}
    )
    result: list[str | None] = []
    thread = threading.Thread(target=lambda: result.append(run_job(ctx, job_id)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while job_of(db, job_id).progress is None and time.monotonic() < deadline:
        time.sleep(0.05)  # fine-tuning reported progress: it is inside the loop
    service.cancel_job(Services(settings, db, storage, RecordingQueue()), job_of(db, job_id))
    thread.join(timeout=30)
    assert not thread.is_alive() and result == [JobState.CANCELED]
    inputs = {job_object_key(model.id, job_id, name) for name in ("naive.png", "mask.png")}
    assert set(object_keys(storage, f"models/{model.id}/jobs/{job_id}/")) == inputs  # no result written


@pytest.mark.parametrize("mode", ["harmonization", "editing"])
@pytest.mark.parametrize("preset", ["paper", "quick"])
def test_training_modes_map_onto_the_engine_presets(preset: Any, mode: Any) -> None:
    cfg = request_config({"preset": preset, "mode": mode})
    assert cfg == engine.TrainConfig.preset(preset, mode=mode) and cfg.mode == mode and cfg.batch_norm
    small = request_config({"preset": preset, "mode": mode, "max_size": 24})
    assert small.mode == mode and small.max_size == 24 and small.min_size <= 24
