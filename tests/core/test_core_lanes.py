"""The lane of a job (core.vocabulary.lane_of): every kind has one, harmonize's depends on `fine_tune`; the
unit of work sends each job to its lane's queue; the embedded runner's poll takes only its lane's jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text

from core import fair_share, jobs
from core.migrate import alembic_config
from core.models import Job, JobKind
from core.queue import job_queues, lane_queue
from core.settings import get_settings
from core.unit_of_work import UnitOfWork
from core.vocabulary import KIND_LANES, LANES, PARAM_DEPENDENT_LANE_KINDS, lane_of
from tests.core.test_core_unit_of_work import add_model
from tests.service_fixtures import RecordingQueue, cancel_leftover_jobs

EXPECTED = {
    ("train", False): "long",
    ("train_sr_head", False): "long",
    ("harmonize", True): "long",
    ("sample", False): "interactive",
    ("super_resolve", False): "interactive",
    ("animate", False): "interactive",
    ("harmonize", False): "interactive",
}


@pytest.mark.parametrize(("kind", "fine_tune", "lane"), [(k, f, lane) for (k, f), lane in EXPECTED.items()])
def test_lane_of_each_kind(kind: str, fine_tune: bool, lane: str) -> None:
    params = {"fine_tune": True, "fine_tune_iters": 50} if fine_tune else {}
    assert lane_of(kind, params) == lane


def test_every_job_kind_is_placed_in_the_vocabulary() -> None:
    # A new kind must be given a lane on purpose, not fall into the long lane's default unnoticed.
    assert {kind.value for kind in JobKind} <= set(KIND_LANES) | PARAM_DEPENDENT_LANE_KINDS
    assert set(KIND_LANES.values()) <= set(LANES)
    assert lane_of("harmonize", {"fine_tune": False}) == "interactive"
    assert lane_of("harmonize", None) == "interactive"
    assert lane_of("a-kind-nobody-listed", {}) == "long"


def test_each_lane_has_its_own_queue() -> None:
    settings = get_settings(gpu_queue="gpu-x")
    assert lane_queue(settings, "long") == "gpu-x"
    assert lane_queue(settings, "interactive") == "gpu-x-interactive"  # derived unless set
    assert job_queues(get_settings(gpu_queue="a", interactive_queue="b")) == ("a", "b")


def test_the_unit_of_work_sends_each_job_to_its_lane(db: Any, caller: Any) -> None:
    queue = RecordingQueue()
    with UnitOfWork(db, queue) as uow:
        model = add_model(uow.session, caller.owner_id)
        train = jobs.create_job(uow.session, model, JobKind.TRAIN)
        sample = jobs.create_job(uow.session, model, JobKind.SAMPLE, {"n": 4})
        tuned = jobs.create_job(uow.session, model, JobKind.HARMONIZE, {"fine_tune": True})
        plain = jobs.create_job(uow.session, model, JobKind.HARMONIZE, {"fine_tune": False})
        uow.commit()
    assert queue.lanes == {
        train.id: "long",
        sample.id: "interactive",
        tuned.id: "long",
        plain.id: "interactive",
    }


def test_the_embedded_poll_takes_the_oldest_job_of_its_lane(db: Any, caller: Any) -> None:
    cancel_leftover_jobs(db)  # the poll looks at every owner's queued jobs
    with UnitOfWork(db, RecordingQueue()) as uow:
        model = add_model(uow.session, caller.owner_id)
        tuned = jobs.create_job(uow.session, model, JobKind.HARMONIZE, {"fine_tune": True})
        train = jobs.create_job(uow.session, model, JobKind.TRAIN)
        plain = jobs.create_job(uow.session, model, JobKind.HARMONIZE, {})
        sample = jobs.create_job(uow.session, model, JobKind.SAMPLE)
        uow.commit()
    try:
        with db.read() as session:
            assert jobs.next_queued_job_id(session, "long") == tuned.id
            assert jobs.next_queued_job_id(session, "interactive") == plain.id
            assert jobs.next_queued_job_id(session) == tuned.id  # no lane: the oldest of all
        with db.transaction() as session:
            for job_id in (tuned.id, plain.id):
                jobs.request_cancel(session, session.get_one(Job, job_id))
        with db.read() as session:
            assert jobs.next_queued_job_id(session, "long") == train.id
            assert jobs.next_queued_job_id(session, "interactive") == sample.id
    finally:
        cancel_leftover_jobs(db)


def test_fair_share_and_queue_positions_count_within_the_jobs_own_lane(db: Any, caller: Any) -> None:
    # An owner's queued trainings must not push their sample back: the sample waits in the interactive lane,
    # where this owner has nothing else, so it goes first there (priority 0, nobody ahead).
    cancel_leftover_jobs(db)
    queue = RecordingQueue()
    with UnitOfWork(db, queue) as uow:
        model = add_model(uow.session, caller.owner_id)
        trainings = [jobs.create_job(uow.session, model, JobKind.TRAIN) for _ in range(3)]
        sample = jobs.create_job(uow.session, model, JobKind.SAMPLE, {"n": 4})
        uow.commit()
    try:
        assert [queue.priorities[t.id] for t in trainings] == [0, 1, 2]
        assert queue.priorities[sample.id] == 0
        with db.read() as session:
            stored = {job.id: job for job in session.scalars(select(Job).where(Job.model_id == model.id))}
            assert {stored[t.id].lane for t in trainings} == {"long"}
            assert stored[sample.id].lane == "interactive"
            assert fair_share.queue_position(session, stored[sample.id]) == 0
            assert fair_share.queue_position(session, stored[trainings[2].id]) == 2
            assert jobs.next_queued_job_id(session, "interactive") == sample.id
            assert jobs.next_queued_job_id(session, "long") == trainings[0].id
    finally:
        cancel_leftover_jobs(db)


def test_the_lanes_migration_gives_stored_jobs_their_real_lane(tmp_path: Path) -> None:
    # Jobs written before b8d4e6f2a7c1 all say "gpu"; the migration puts each in the lane its kind and params name.
    url = f"sqlite:///{tmp_path / 'lanes.db'}"
    config = alembic_config(url)
    command.upgrade(config, "e5f1a2b3c4d6")
    engine = create_engine(url)
    rows = {"j1": ("train", {}), "j2": ("sample", {"n": 4}), "j3": ("harmonize", {"fine_tune": True}),
            "j4": ("harmonize", {"fine_tune": False}), "j5": ("paint", {})}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO owners (id, name, webhook_secret, created_at) "
                "VALUES ('own_m', 'm', 's', CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO models (id, owner_id, params, image_width, image_height, input_key, webhook_events, "
                "created_at) VALUES ('mdl_m', 'own_m', '{}', 8, 8, 'x', '[]', CURRENT_TIMESTAMP)"
            )
        )
        for job_id, (kind, params) in rows.items():
            connection.execute(
                text(
                    "INSERT INTO jobs (id, owner_id, model_id, kind, state, params, cancel_requested, attempts, "
                    "stages_done, created_at) VALUES (:id, 'own_m', 'mdl_m', :kind, 'queued', :params, 0, 0, 0, "
                    "CURRENT_TIMESTAMP)"
                ),
                {"id": job_id, "kind": kind, "params": json.dumps(params)},
            )
    command.upgrade(config, "b8d4e6f2a7c1")
    with engine.connect() as connection:
        lanes = dict(connection.execute(text("SELECT id, lane FROM jobs")).all())
    engine.dispose()
    assert lanes == {
        "j1": "long",
        "j2": "interactive",
        "j3": "long",
        "j4": "interactive",
        "j5": "interactive",
    }
