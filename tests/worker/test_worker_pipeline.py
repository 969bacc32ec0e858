"""Running jobs on real Postgres and S3 with tiny CPU trainings: results, redelivery, cancel, failures, resume."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

import engine
from core import jobs, service
from core.ids import new_id
from core.images import validate_image
from core.keys import create_key, get_or_create_owner
from core.models import Job, JobEvent, JobKind, JobState, Model, Sample, WebhookDelivery, utcnow
from core.services import Services
from core.storage import checkpoint_key, input_key, stage_key, stage_preview_key
from core.vocabulary import SAMPLE_BATCH
from engine.spec import request_config
from engine.spec.geometry import stage_sizes
from tests.service_fixtures import (
    TINY_TRAINING,
    Caller,
    RecordingQueue,
    object_keys,
    scene_image,
    submit_job,
)
from worker import tasks
from worker.artifacts import sample_in_batches
from worker.run import run_job
from worker.runtime import WorkerContext


@pytest.fixture(scope="module")
def owner(db: Any) -> Caller:
    with db.transaction() as session:
        o = get_or_create_owner(session, f"worker-tests-{time.time_ns()}")
        return Caller(o.id, o.name, create_key(session, o), o.webhook_secret)


def new_model(
    db: Any,
    storage: Any,
    settings: Any,
    owner_id: str,
    params: dict[str, Any],
    webhook_url: str | None = None,
) -> Model:
    events = ("model.succeeded", "model.failed", "model.canceled", "job.succeeded")
    job = submit_job(
        db, storage, settings, JobKind.TRAIN, owner_id, {"seed": 1, **params},
        image=scene_image(), webhook_url=webhook_url, webhook_events=events,
    )  # fmt: skip
    with db.read() as session:
        return session.get_one(Model, job.model_id)


def job_of(db: Any, job_id: str) -> Job:
    with db.read() as session:
        return session.get_one(Job, job_id)


def event_types(db: Any, job_id: str) -> list[str]:
    with db.read() as session:
        return list(
            session.scalars(select(JobEvent.type).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        )


class CountingTrain:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.real = engine.train

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        resume = kwargs.get("resume")
        self.calls.append(
            {"resumed_at": resume.stages_done if resume is not None else None}
        )  # train mutates it
        return self.real(*args, **kwargs)


@dataclass
class Trained:
    model: Model
    job_id: str
    ctx: WorkerContext
    train_calls: int


@pytest.fixture(scope="module")
def trained(db: Any, storage: Any, settings: Any, owner: Caller) -> Iterator[Trained]:
    """One tiny training through the Celery task function, delivered TWICE (as Celery may redeliver)."""
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    model = new_model(
        db, storage, settings, owner.owner_id, TINY_TRAINING, webhook_url="https://example.com/hook"
    )
    assert model.train_job is not None
    counting = CountingTrain()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks, "_context", ctx)
        mp.setattr(engine, "train", counting)
        tasks.JOB_TASKS[JobKind.TRAIN].run(model.train_job.id)
        tasks.JOB_TASKS[JobKind.TRAIN].run(model.train_job.id)  # the redelivery
    yield Trained(model, model.train_job.id, ctx, len(counting.calls))


def test_training_stores_checkpoint_previews_and_outbox(trained: Trained, db: Any, storage: Any) -> None:
    job = job_of(db, trained.job_id)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.attempts == 1 and job.progress and job.progress["percent"] == pytest.approx(100.0, abs=0.5)
    model_id = trained.model.id
    assert storage.exists(checkpoint_key(model_id)) and storage.exists(stage_key(model_id, 0))
    with db.read() as session:
        model = session.get_one(Model, model_id)
        assert model.checkpoint_key == checkpoint_key(model_id)
        assert model.train_config and model.train_config["iters_per_stage"] == 3
        previews = list(session.scalars(select(Sample).where(Sample.model_id == model_id)))
        outbox = list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job.id)))
    assert len(previews) == 8 and all(p.is_preview for p in previews)
    assert {f"models/{model_id}/samples/{p.id}.png" for p in previews} <= set(
        object_keys(storage, f"models/{model_id}/")
    )
    assert [d.event_type for d in outbox] == ["model.succeeded"]
    assert isinstance(trained.ctx.queue, RecordingQueue) and trained.ctx.queue.webhooks == [outbox[0].id]
    types = event_types(db, job.id)
    assert types[:2] == ["queued", "started"] and types[-1] == "succeeded" and "stage_done" in types


def test_redelivered_task_does_not_train_twice(trained: Trained, db: Any) -> None:
    assert trained.train_calls == 1
    assert event_types(db, trained.job_id).count("started") == 1


def test_sample_job_draws_images_at_another_aspect(
    trained: Trained, db: Any, storage: Any, settings: Any
) -> None:
    with db.read() as session:
        model = session.get_one(Model, trained.model.id)
    params = {"n": 3, "seed": 2, "scale_h": 1.0, "scale_w": 1.5, "start_stage": 0}
    job = submit_job(db, storage, settings, JobKind.SAMPLE, model.owner_id, params, model=model)
    assert run_job(trained.ctx, job.id) == JobState.SUCCEEDED
    with db.read() as session:
        samples = list(session.scalars(select(Sample).where(Sample.job_id == job.id)))
    assert len(samples) == 3 and not any(s.is_preview for s in samples)
    widths = {s.width for s in samples}
    heights = {s.height for s in samples}
    assert len(widths) == 1 and len(heights) == 1 and widths.pop() > heights.pop()  # 48x40 scene, wider still
    with Image.open(io.BytesIO(storage.get(samples[0].key))) as image:
        assert image.format == "PNG" and image.size == (samples[0].width, samples[0].height)


class ThreadQueue(RecordingQueue):
    """A queue whose 'worker' is a thread running the real run_job (for Prefer: wait through the API)."""

    def __init__(self, ctx: WorkerContext) -> None:
        super().__init__()
        self.ctx = ctx

    def send_job(self, job_id: str, kind: Any, lane: str, priority: int = 0) -> None:
        super().send_job(job_id, kind, lane, priority)
        threading.Thread(target=run_job, args=(self.ctx, job_id), daemon=True).start()


def test_prefer_wait_returns_finished_samples_inline(
    trained: Trained, make_client: Any, owner: Caller
) -> None:
    client = make_client(queue=ThreadQueue(trained.ctx))
    response = client.post(
        f"/v1/models/{trained.model.id}/samples",
        headers={**owner.headers, "Prefer": "wait=60"},
        json={"n": 2, "seed": 9},
    )
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "wait=60"
    body = response.json()
    assert body["state"] == "succeeded" and len(body["samples"]) == 2
    download = httpx.get(body["samples"][0]["url"])  # presigned S3 URL
    with Image.open(io.BytesIO(download.content)) as image:
        image.load()
        assert image.size == (body["samples"][0]["width"], body["samples"][0]["height"])
    listed = client.get(f"/v1/models/{trained.model.id}/samples?limit=100", headers=owner.headers).json()
    assert {s["id"] for s in body["samples"]} <= {s["id"] for s in listed["data"]}


def start_long_training(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> tuple[Any, threading.Thread, list[str | None]]:
    """A 5000-iteration training running in a thread; returns once its job is `running`."""
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    model = new_model(db, storage, settings, owner.owner_id, {**TINY_TRAINING, "iters_per_stage": 5000})
    assert model.train_job is not None
    job_id = model.train_job.id
    result: list[str | None] = []
    thread = threading.Thread(target=lambda: result.append(run_job(ctx, job_id)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while job_of(db, job_id).state != JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    return model, thread, result


def test_cancel_running_training_stops_within_seconds(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> None:
    model, thread, result = start_long_training(db, storage, settings, owner)
    job_id = model.train_job.id
    time.sleep(1.0)  # well inside the training loop
    with db.read() as session:
        job = session.get_one(Job, job_id)
    service.cancel_job(Services(settings, db, storage, RecordingQueue()), job)
    canceled_at = time.monotonic()
    thread.join(timeout=30)
    assert not thread.is_alive() and result == [JobState.CANCELED]
    assert time.monotonic() - canceled_at < 10
    assert event_types(db, job_id)[-2:] == ["cancel_requested", "canceled"]
    with db.read() as session:
        outbox = session.scalars(
            select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job_id)
        ).all()
    assert list(outbox) == []  # no webhook_url on this model


def model_without_checks(
    db: Any, storage: Any, owner_id: str, params: dict[str, Any], webhook_url: str
) -> Model:
    """Straight to the tables, past the API's checks (which refuse these params since they ask the engine's
    rules): the worker must still fail such a job with the engine's reason, not crash on it."""
    image = validate_image(scene_image(), max_pixels=40_000_000, max_side=8192, min_side=16)
    model_id = new_id("mdl")
    storage.put(input_key(model_id), image.png, "image/png")
    with db.transaction() as session:
        model = Model(
            id=model_id, owner_id=owner_id, params={"seed": 1, **params}, image_width=image.width,
            image_height=image.height, input_key=input_key(model_id), webhook_url=webhook_url,
            webhook_events=["model.failed"], created_at=utcnow(),
        )  # fmt: skip
        session.add(model)
        session.flush()
        jobs.create_job(session, model, JobKind.TRAIN)
    with db.read() as session:
        return session.get_one(Model, model_id)


def test_config_the_engine_rejects_fails_with_its_reason(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> None:
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    params = {"preset": "quick", "max_size": 20, "min_size": 30}
    model = model_without_checks(db, storage, owner.owner_id, params, "https://e.com/h")
    assert model.train_job is not None
    assert run_job(ctx, model.train_job.id) == JobState.FAILED
    job = job_of(db, model.train_job.id)
    assert "min_size" in (job.error or "")
    with db.read() as session:
        outbox = session.scalars(
            select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job.id)
        ).all()
    assert list(outbox) == ["model.failed"]


def test_unsupported_kind_fails_with_reason(trained: Trained, db: Any) -> None:
    with db.read() as session:
        model = session.get_one(Model, trained.model.id)
        from core import jobs
        from core.models import JobKind

        job = jobs.create_job(session, model, JobKind.SAMPLE)
        job.kind = "restyle"  # a kind of the future that no worker runs yet
        session.commit()
    assert run_job(trained.ctx, job.id) == JobState.FAILED
    assert "not supported" in (job_of(db, job.id).error or "")


def test_requeued_job_resumes_from_the_last_stage_snapshot(
    trained: Trained, db: Any, storage: Any, settings: Any, owner: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = new_model(db, storage, settings, owner.owner_id, TINY_TRAINING)
    assert model.train_job is not None
    storage.put(
        stage_key(model.id, 0), storage.get(stage_key(trained.model.id, 0)), "application/octet-stream"
    )
    with db.transaction() as session:
        session.get_one(Job, model.train_job.id).stages_done = 1  # as a crashed attempt would have left it
    counting = CountingTrain()
    monkeypatch.setattr(engine, "train", counting)
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    assert run_job(ctx, model.train_job.id) == JobState.SUCCEEDED
    (call,) = counting.calls
    assert call["resumed_at"] == 1


def test_engine_crash_fails_the_job_with_the_reason(
    db: Any, storage: Any, settings: Any, owner: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(engine, "train", out_of_memory)
    model = new_model(db, storage, settings, owner.owner_id, TINY_TRAINING)
    assert model.train_job is not None
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    assert run_job(ctx, model.train_job.id) == JobState.FAILED
    assert job_of(db, model.train_job.id).error == "RuntimeError: CUDA out of memory"


def test_model_deleted_while_training_leaves_nothing_behind(
    db: Any, storage: Any, settings: Any, owner: Caller
) -> None:
    model, thread, result = start_long_training(db, storage, settings, owner)
    service.delete_model(Services(settings, db, storage, RecordingQueue()), model)
    thread.join(timeout=30)
    assert not thread.is_alive() and result == [None]
    assert object_keys(storage, f"models/{model.id}/") == []


def test_batched_sampling_is_reproducible_for_a_seed(trained: Trained, storage: Any) -> None:
    model = engine.checkpoint.from_bytes(storage.get(checkpoint_key(trained.model.id)))
    first = sample_in_batches(model, SAMPLE_BATCH + 2, engine.make_rng(5, "cpu"))
    again = sample_in_batches(model, SAMPLE_BATCH + 2, engine.make_rng(5, "cpu"))
    assert first.shape[0] == SAMPLE_BATCH + 2 and first.device.type == "cpu"
    assert (first == again).all()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"preset": "quick"}, {}),
        ({"preset": "quick", "max_size": 20}, {"max_size": 20, "min_size": 20}),
        (
            {"preset": "paper", "mode": "harmonization", "train_stages": 4},
            {"train_stages": 4},
        ),
        ({"preset": "quick", "iters_per_stage": 7, "lr_scale": 0.5}, {"iters_per_stage": 7, "lr_scale": 0.5}),
    ],
)
def test_request_params_map_onto_engine_presets(params: dict[str, Any], expected: dict[str, Any]) -> None:
    cfg = request_config(params)
    preset = engine.TrainConfig.preset(params["preset"], mode=params.get("mode", "generation"))
    assert {k: v for k, v in cfg.to_dict().items() if preset.to_dict()[k] != v} == expected


def test_each_finished_stage_stores_a_preview_and_announces_it(
    trained: Trained, db: Any, storage: Any
) -> None:
    """What the page shows while a training runs: after every stage, the last one included (its preview
    shows when the stage ends, not when the job does), one image drawn by the model so far, announced in
    `stage_done`."""
    model_id = trained.model.id
    with db.read() as session:
        model = session.get_one(Model, model_id)
        query = (
            select(JobEvent)
            .where(JobEvent.job_id == trained.job_id, JobEvent.type == "stage_done")
            .order_by(JobEvent.id)
        )
        events = list(session.scalars(query))
    first = engine.TrainConfig.from_dict(model.train_config or {})
    sizes = stage_sizes(model.image_height, model.image_width, first)
    assert [e.data for e in events] == [
        {"stages_done": k + 1, "stage": k, "preview": {"width": w, "height": h}}
        for k, (h, w) in enumerate(sizes)
    ]
    for k, (height, width) in enumerate(sizes):
        with Image.open(io.BytesIO(storage.get(stage_preview_key(model_id, k)))) as image:
            assert image.format == "PNG" and image.size == (width, height)


def test_animate_job_stores_a_looping_animation_of_the_asked_frames(
    trained: Trained, db: Any, storage: Any, settings: Any
) -> None:
    from core.results import job_file_key

    with db.read() as session:
        model = session.get_one(Model, trained.model.id)
    params = {
        "frames": 5,
        "fps": 4.0,
        "alpha": 0.1,
        "beta": 0.9,
        "start_stage": 1,
        "format": "webp",
        "seed": 2,
    }
    job = submit_job(db, storage, settings, JobKind.ANIMATE, model.owner_id, params, model=model)
    assert run_job(trained.ctx, job.id) == JobState.SUCCEEDED, job_of(db, job.id).error
    done = job_of(db, job.id)
    assert (
        done.result is not None and done.result["files"] == ["animation.webp"] and done.result["frames"] == 5
    )
    with Image.open(io.BytesIO(storage.get(job_file_key(done, "animation.webp")))) as animation:
        assert animation.format == "WEBP" and animation.n_frames == 5
        top = (done.result["width"], done.result["height"])
        assert animation.size == top == (32, 27)  # the 48x40 scene at max_size 32
