"""What a newcomer needs from the worker (issue 22), on real Postgres and S3 with tiny CPU trainings: the SR
head trains after the model as a job of its own; a cancel keeps the stages trained so far; the last stage's
preview appears when its stage ends; harmonization models preview injections of their own image."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy
import pytest
import torch
from PIL import Image
from sqlalchemy import select

import engine
from core import service
from core.errors import Conflict, NothingToKeep
from core.keys import create_key, get_or_create_owner
from core.kind_rules import RULES, RuleContext
from core.models import Job, JobEvent, JobKind, JobState, Model, Sample, WebhookDelivery
from core.services import Services
from core.storage import checkpoint_key, stage_key, stage_preview_key
from engine.harmonization import render
from engine.noise import draw_inputs
from engine.sampling import generate, scaled_shapes
from tests.service_fixtures import TINY_TRAINING, Caller, RecordingQueue, scene_image, submit_job
from worker.run import run_job
from worker.runtime import WorkerContext

EVENTS = ("model.succeeded", "model.failed", "model.canceled", "job.succeeded", "job.canceled")


@pytest.fixture(scope="module")
def owner(db: Any) -> Caller:
    with db.transaction() as session:
        o = get_or_create_owner(session, f"newcomer-worker-{time.time_ns()}")
        return Caller(o.id, o.name, create_key(session, o), o.webhook_secret)


def job_of(db: Any, job_id: str) -> Job:
    with db.read() as session:
        return session.get_one(Job, job_id)


def model_of(db: Any, model_id: str) -> Model:
    with db.read() as session:
        return session.get_one(Model, model_id)


def new_training(db: Any, storage: Any, settings: Any, owner: Caller, **params: Any) -> Job:
    return submit_job(
        db, storage, settings, JobKind.TRAIN, owner.owner_id, {"seed": 3, **TINY_TRAINING, **params},
        image=scene_image(), webhook_url="https://example.com/hook", webhook_events=EVENTS,
    )  # fmt: skip


def outbox(db: Any, job_id: str) -> list[str]:
    with db.read() as session:
        query = select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job_id)
        return list(session.scalars(query))


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    return thread, result


def wait_until(check: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- the SR head after the model ----------------------------------------------------------------------------


def test_a_model_with_sr_factor_succeeds_before_its_head_which_trains_as_its_own_job(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> None:
    train = new_training(db, storage, settings, owner, sr_factor=2.0, sr_iters=4)
    queue = RecordingQueue()
    ctx = WorkerContext(settings, db, storage, queue)
    assert run_job(ctx, train.id) == JobState.SUCCEEDED, job_of(db, train.id).error
    model = model_of(db, train.model_id)
    # usable now: checkpoint, previews, the webhook; no head yet, and one queued head job sent after commit
    assert model.checkpoint_key and model.sr_head is None
    assert outbox(db, train.id) == ["model.succeeded"]
    with db.read() as session:
        previews = session.scalars(select(Sample).where(Sample.model_id == model.id)).all()
    assert len(previews) == settings.preview_samples
    (head_job,) = model.sr_head_jobs
    assert queue.jobs == [(head_job.id, "train_sr_head")]
    assert head_job.state == JobState.QUEUED
    assert head_job.params["factor"] == 2.0 and head_job.params["iterations"] == 4
    assert head_job.params["seed"] == 3 + 3  # the model's seed + SR_HEAD_SEED_OFFSET, as before

    assert run_job(ctx, head_job.id) == JobState.SUCCEEDED, job_of(db, head_job.id).error
    model = model_of(db, train.model_id)
    assert model.sr_head is not None and model.sr_head["iterations"] == 4 and model.sr_head["sr_train"] == 2.0
    done = job_of(db, head_job.id)
    assert done.progress is not None and done.progress["iters_per_stage"] == 4
    assert done.progress["percent"] == pytest.approx(100.0)
    with db.read() as session:
        types = list(
            session.scalars(select(JobEvent.type).where(JobEvent.job_id == head_job.id).order_by(JobEvent.id))
        )
    assert types[:2] == ["queued", "started"] and types[-1] == "succeeded"
    assert "progress" in types  # milestones, as a training reports them


def test_canceling_the_head_keeps_the_model(db: Any, storage: Any, settings: Any, owner: Caller) -> None:
    train = new_training(db, storage, settings, owner, sr_factor=2.0, sr_iters=20000)
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    assert run_job(ctx, train.id) == JobState.SUCCEEDED
    (head_job,) = model_of(db, train.model_id).sr_head_jobs
    thread, result = in_thread(lambda: run_job(ctx, head_job.id))
    wait_until(lambda: (job_of(db, head_job.id).progress or {}).get("iteration", 0) > 0)
    services = Services(settings, db, storage, RecordingQueue())
    service.cancel_job(services, job_of(db, head_job.id))
    thread.join(timeout=60)
    assert result == [JobState.CANCELED]
    model = model_of(db, train.model_id)
    assert model.train_job is not None and model.train_job.state == JobState.SUCCEEDED
    assert model.sr_head is None and model.checkpoint_key and storage.exists(model.checkpoint_key)
    assert outbox(db, train.id) == ["model.succeeded"] and outbox(db, head_job.id) == ["job.canceled"]


# --- cancel and keep ----------------------------------------------------------------------------------------


def long_training(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> tuple[Job, threading.Thread, list[Any]]:
    train = new_training(db, storage, settings, owner, train_stages=3, iters_per_stage=400)
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    thread, result = in_thread(lambda: run_job(ctx, train.id))
    wait_until(lambda: job_of(db, train.id).state == JobState.RUNNING)
    return train, thread, result


def test_cancel_keeping_the_trained_stages_ends_with_a_smaller_usable_model(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> None:
    train, thread, result = long_training(db, storage, settings, owner)
    services = Services(settings, db, storage, RecordingQueue())
    wait_until(lambda: job_of(db, train.id).stages_done >= 1)
    service.cancel_model(services, model_of(db, train.model_id), keep_trained_stages=True)
    thread.join(timeout=120)
    assert result == [JobState.SUCCEEDED], job_of(db, train.id).error

    job, model = job_of(db, train.id), model_of(db, train.model_id)
    kept = job.stages_done
    assert 1 <= kept < 3 and model.stages_trained == kept
    assert job.result == {"stages_trained": kept, "stages_planned": 3, "kept_on_cancel": True}
    assert model.checkpoint_key == checkpoint_key(model.id)
    partial = engine.checkpoint.from_bytes(storage.get(model.checkpoint_key))
    assert partial.stages_done == kept and partial.num_stages == 3
    assert storage.get(model.checkpoint_key) == storage.get(stage_key(model.id, kept - 1))
    assert outbox(db, train.id) == ["model.succeeded"]
    with db.read() as session:
        messages = list(
            session.scalars(select(JobEvent.message).where(JobEvent.job_id == train.id).order_by(JobEvent.id))
        )
        previews = session.scalars(select(Sample).where(Sample.model_id == model.id)).all()
    assert messages[-1] == f"canceled after {kept} of 3 stages; the model keeps the {kept} trained"
    top_h, top_w = partial.stage_shapes[kept - 1]
    assert previews and all((p.width, p.height) == (top_w, top_h) for p in previews)

    # it samples like any model, at its last trained stage's size; stage indexes stop at what it has
    sample = submit_job(
        db, storage, settings, JobKind.SAMPLE, owner.owner_id, {"n": 2, "seed": 1}, model=model
    )
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    assert run_job(ctx, sample.id) == JobState.SUCCEEDED, job_of(db, sample.id).error
    with db.read() as session:
        drawn = session.scalars(select(Sample).where(Sample.job_id == sample.id)).all()
    assert [(s.width, s.height) for s in drawn] == [(top_w, top_h)] * 2
    context = RuleContext(settings, db)
    with pytest.raises(Exception, match=f"between 0 and {kept - 1}"):
        RULES[JobKind.SAMPLE].complete(model, {"n": 1, "start_stage": kept}, {}, context)
    with pytest.raises(Conflict, match="complete pyramid"):  # no head for a partial model
        RULES[JobKind.TRAIN_SR_HEAD].complete(model, {"factor": 2.0}, {}, context)


def test_keep_before_the_first_stage_is_refused_and_changes_nothing(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> None:
    train, thread, result = long_training(db, storage, settings, owner)
    services = Services(settings, db, storage, RecordingQueue())
    assert job_of(db, train.id).stages_done == 0  # 400 iterations of stage 0 take longer than this
    with pytest.raises(NothingToKeep, match="no stage has finished yet"):
        service.cancel_model(services, model_of(db, train.model_id), keep_trained_stages=True)
    job = job_of(db, train.id)
    assert job.state == JobState.RUNNING and not job.cancel_requested and not job.keep_trained_stages
    service.cancel_model(services, model_of(db, train.model_id))  # discard
    thread.join(timeout=60)
    assert result == [JobState.CANCELED]
    assert model_of(db, train.model_id).checkpoint_key is None


def test_keep_of_a_queued_training_is_refused(db: Any, storage: Any, settings: Any, owner: Caller) -> None:
    train = new_training(db, storage, settings, owner)
    services = Services(settings, db, storage, RecordingQueue())
    with pytest.raises(NothingToKeep, match="has not started"):
        service.cancel_model(services, model_of(db, train.model_id), keep_trained_stages=True)
    assert job_of(db, train.id).state == JobState.QUEUED
    service.cancel_model(services, model_of(db, train.model_id))
    assert job_of(db, train.id).state == JobState.CANCELED


# --- previews ----------------------------------------------------------------------------------------------


def png_pixels(data: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as image:
        return torch.from_numpy(numpy.asarray(image.convert("RGB"), dtype=numpy.int16).copy())


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two [1, 3, H, W] images in [-1, 1], in 0..255 levels."""
    return float((a - b).abs().mean()) * 127.5


def test_a_harmonization_model_previews_its_own_image_injected(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> None:
    """Its stage previews and its first preview sample are the painting put in at stage 0 and rendered (what
    a harmonization does to it): they look like the painting, where noise at stage 0 (what the previews
    were before) gives static, since stage 0 of such a model never saw noise (spec §5)."""
    train = new_training(db, storage, settings, owner, mode="harmonization", iters_per_stage=150)
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    assert run_job(ctx, train.id) == JobState.SUCCEEDED, job_of(db, train.id).error
    model = model_of(db, train.model_id)
    for stage in range(2):
        snapshot = engine.checkpoint.from_bytes(storage.get(stage_key(model.id, stage)))
        injected = render(snapshot, snapshot.image, stage=0)  # [1, 3, H, W]
        stored = storage.get(stage_preview_key(model.id, stage))
        assert (png_pixels(stored) - png_pixels(engine.to_png_bytes(injected[0]))).abs().max() <= 1
        shapes = scaled_shapes(snapshot, (1.0, 1.0))
        static = generate(snapshot, draw_inputs(shapes, snapshot.config, engine.make_rng(5, "cpu")), shapes)
        assert distance(injected, snapshot.image) * 2 < distance(static, snapshot.image), f"stage {stage}"
    with db.read() as session:
        first = session.scalars(select(Sample).where(Sample.model_id == model.id).order_by(Sample.id)).first()
    assert first is not None and first.is_preview
    final = engine.checkpoint.from_bytes(storage.get(checkpoint_key(model.id)))
    expected = engine.to_png_bytes(render(final, final.image, stage=0)[0])
    assert (png_pixels(storage.get(first.key)) - png_pixels(expected)).abs().max() <= 1


def test_the_head_iterations_the_page_announces_are_those_the_worker_trains() -> None:
    from core.models import Model
    from core.vocabulary import PRESETS, SR_HEAD_ITERS_DEFAULT
    from worker.artifacts import sr_head_config

    for preset in PRESETS:
        head = sr_head_config(Model(params={"preset": preset}), 4.0, None)
        assert SR_HEAD_ITERS_DEFAULT[preset] == head.iterations
