"""A training records its pace per stage (core.estimates' IterationSpeed rows, against its device kind), and
its running ETA comes from the plan; `GET /v1/estimate` then answers from those measurements."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlalchemy import select

from core.models import IterationSpeed, Job, JobKind, JobState, Model
from core.training import pyramid
from tests.service_fixtures import TINY_TRAINING, RecordingQueue, scene_image, submit_job
from worker.run import run_job
from worker.runtime import WorkerContext

TRAINING = {**TINY_TRAINING, "iters_per_stage": 30, "train_stages": 3, "max_size": 40}


def test_a_training_records_each_stages_pace_and_the_estimate_uses_it(
    db: Any, storage: Any, settings: Any, caller: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = f"cpu:test-{secrets.token_hex(4)}"  # this test's own device kind: other runs share the table
    monkeypatch.setattr(WorkerContext, "device_kind", property(lambda self: device))
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    client = make_client()
    query = {"width": 48, "height": 40, **TRAINING}
    before = client.get("/v1/estimate", params=query, headers=caller.headers)
    assert before.status_code == 200, before.text

    job = submit_job(
        db, storage, settings, JobKind.TRAIN, caller.owner_id, {"seed": 3, **TRAINING}, image=scene_image()
    )
    run_job(ctx, job.id)
    with db.read() as session:
        done = session.get_one(Job, job.id)
        assert done.state == JobState.SUCCEEDED, done.error
        rows = list(
            session.scalars(
                select(IterationSpeed).where(IterationSpeed.device == device).order_by(IterationSpeed.id)
            )
        )
    sizes = pyramid(48, 40, TRAINING).stage_sizes
    chain = [sum(h * w for h, w in sizes[: k + 1]) for k in range(len(sizes))]
    assert [(r.phase, r.stage, r.pixels, r.channels) for r in rows] == [
        ("stage", k, chain[k], 32) for k in range(3)
    ]
    assert [r.iterations for r in rows] == [20, 30, 30]  # stage 0 from its first report (iteration 10)
    assert all(0 < r.seconds_per_iteration < 30 for r in rows)
    assert done.progress is not None and done.progress["eta_s"] is not None

    after = client.get("/v1/estimate", params=query, headers=caller.headers)
    body = after.json()
    assert after.status_code == 200 and body["device"] == device and body["basis"] == "measured"
    assert body["measurements"] == 3 and [s["iterations"] for s in body["stages"]] == [30, 30, 30]
    measured_total = sum(r.seconds_per_iteration * 30 for r in rows)
    assert measured_total / 2 < body["total_s"] < measured_total * 2, (body, measured_total)


def test_the_super_resolution_head_records_its_pace_too(
    db: Any, storage: Any, settings: Any, caller: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = f"cpu:test-{secrets.token_hex(4)}"
    monkeypatch.setattr(WorkerContext, "device_kind", property(lambda self: device))
    ctx = WorkerContext(settings, db, storage, RecordingQueue())
    fields = {**TINY_TRAINING, "iters_per_stage": 12, "sr_factor": 2.0, "sr_iters": 24}
    job = submit_job(
        db, storage, settings, JobKind.TRAIN, caller.owner_id, {"seed": 4, **fields}, image=scene_image()
    )
    run_job(ctx, job.id)
    with db.read() as session:
        assert session.get_one(Job, job.id).state == JobState.SUCCEEDED
        (head_job,) = session.get_one(Model, job.model_id).sr_head_jobs  # its own job, after the model
    assert run_job(ctx, head_job.id) == JobState.SUCCEEDED
    with db.read() as session:
        rows = list(
            session.scalars(
                select(IterationSpeed).where(IterationSpeed.device == device).order_by(IterationSpeed.id)
            )
        )
    top_height, top_width = pyramid(48, 40, fields).stage_sizes[-1]
    assert [r.phase for r in rows] == ["stage", "stage", "sr_head"]
    head = rows[-1]
    # the head job's plan has one phase (index 0); its pace counts from the first report this attempt saw
    assert (head.stage, head.pixels, head.channels) == (0, top_height * top_width, 32)
    assert 0 < head.iterations <= 24


@pytest.mark.parametrize("preset", ["paper", "quick"])
@pytest.mark.parametrize("sr_iters", [None, 37])
def test_the_head_the_estimate_plans_is_the_head_the_worker_trains(preset: str, sr_iters: int | None) -> None:
    from core.estimates import sr_head_shape
    from core.models import Model
    from worker.artifacts import sr_head_config

    params = {"preset": preset, "sr_factor": 4.0, "sr_iters": sr_iters}
    trained = sr_head_config(Model(params=params), 4.0, sr_iters)
    assert sr_head_shape({}, params) == (trained.iterations, trained.channels)
