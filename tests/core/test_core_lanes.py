"""The lane of a job (core.vocabulary.lane_of): every kind has one, harmonize's depends on `fine_tune`; the
unit of work sends each job to its lane's queue; the embedded runner's poll takes only its lane's jobs."""

from __future__ import annotations

from typing import Any

import pytest

from core import jobs
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
