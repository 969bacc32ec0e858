"""Cancel with `keep_trained_stages` and the SR head trained after the model, over HTTP: what the API
accepts, refuses (and then changes nothing), and how a model reads while its head trains."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core import jobs, service
from core.errors import NothingToKeep
from core.models import Job, JobKind, JobState, Model
from core.services import Services
from core.storage import checkpoint_key
from tests.api.helpers import create_model
from tests.service_fixtures import RecordingQueue

PROBLEM = "https://consingan.dev/problems/"


def train_job(db: Any, model_id: str) -> Job:
    with db.read() as session:
        return session.scalars(select(Job).where(Job.model_id == model_id, Job.kind == JobKind.TRAIN)).one()


def set_running(db: Any, model_id: str, stages_done: int) -> None:
    """As a worker leaves a training that finished `stages_done` of its 3 stages."""
    with db.transaction() as session:
        job = session.scalars(select(Job).where(Job.model_id == model_id, Job.kind == JobKind.TRAIN)).one()
        job.state, job.attempts, job.stages_done = JobState.RUNNING.value, 1, stages_done
        session.get_one(Model, model_id).train_config = {"train_stages": 3, "mode": "generation"}


def cancel(client: Any, caller: Any, model_id: str, **kwargs: Any) -> Any:
    return client.post(f"/v1/models/{model_id}/cancel", headers=caller.headers, **kwargs)


def test_keep_trained_stages_flags_a_running_training_that_finished_a_stage(
    client: Any, caller: Any, db: Any
) -> None:
    model_id = create_model(client, caller)["id"]
    set_running(db, model_id, stages_done=2)
    response = cancel(client, caller, model_id, json={"keep_trained_stages": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "running" and body["cancel_requested"] is True
    assert (body["stages_planned"], body["stages_trained"]) == (3, 2)
    job = train_job(db, model_id)
    assert job.cancel_requested and job.keep_trained_stages


@pytest.mark.parametrize(
    ("stages_done", "running", "says"),
    [(0, True, "no stage has finished yet"), (0, False, "has not started")],
)
def test_keep_with_nothing_to_keep_is_a_409_that_changes_nothing(
    client: Any, caller: Any, db: Any, stages_done: int, running: bool, says: str
) -> None:
    model_id = create_model(client, caller)["id"]
    if running:
        set_running(db, model_id, stages_done)
    response = cancel(client, caller, model_id, json={"keep_trained_stages": True})
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == PROBLEM + "nothing-to-keep" and says in problem["detail"]
    assert "without keep_trained_stages" in problem["detail"] and problem["stages_done"] == 0
    job = train_job(db, model_id)
    assert job.state == (JobState.RUNNING if running else JobState.QUEUED)
    assert not job.cancel_requested and not job.keep_trained_stages


def test_a_cancel_without_a_body_discards_as_before(client: Any, caller: Any, db: Any) -> None:
    model_id = create_model(client, caller)["id"]
    assert cancel(client, caller, model_id).json()["state"] == "canceled"  # queued: at once
    other = create_model(client, caller)["id"]
    set_running(db, other, stages_done=1)
    body = cancel(client, caller, other, json={"keep_trained_stages": False}).json()
    assert body["cancel_requested"] is True and not train_job(db, other).keep_trained_stages


@pytest.mark.parametrize(
    "payload", [{"keep_trained_stages": "yes"}, {"keep_trained_stages": 1}, {"keep": True}, [True]]
)
def test_a_malformed_cancel_body_is_a_422(client: Any, caller: Any, db: Any, payload: Any) -> None:
    model_id = create_model(client, caller)["id"]
    set_running(db, model_id, stages_done=1)
    response = cancel(client, caller, model_id, json=payload)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert not train_job(db, model_id).cancel_requested


def test_the_cancel_body_is_documented(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/models/{model_id}/cancel"]["post"]
    assert not operation["requestBody"].get("required", False)  # no body: discard, as before
    assert "nothing-to-keep" in operation["responses"]["409"]["description"]
    assert "keep_trained_stages" in spec["components"]["schemas"]["ModelCancel"]["properties"]
    assert "stages_trained" in spec["components"]["schemas"]["ModelRead"]["properties"]


def test_a_model_reads_its_head_training_and_a_second_head_waits(
    client: Any, caller: Any, db: Any, queue: Any
) -> None:
    model_id = create_model(client, caller, sr_factor="4")["id"]
    with db.transaction() as session:
        model = session.get_one(Model, model_id)
        job = session.scalars(select(Job).where(Job.model_id == model_id, Job.kind == JobKind.TRAIN)).one()
        job.state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        model.train_config = {"mode": "generation", "train_stages": 2, "max_size": 32, "min_size": 16}
        head = jobs.create_job(session, model, JobKind.TRAIN_SR_HEAD, {"factor": 4.0, "seed": 1})
        head.state = JobState.RUNNING.value
        head.progress = {"stage": 0, "num_stages": 1, "iteration": 30, "iters_per_stage": 600, "percent": 5.0}
    body = client.get(f"/v1/models/{model_id}", headers=caller.headers).json()
    assert body["state"] == "succeeded" and body["sr_head"] is None
    assert (body["stages_planned"], body["stages_trained"]) == (2, 2)
    training = body["sr_head_training"]
    assert training["job_id"] == head.id and training["state"] == "running" and training["factor"] == 4.0
    assert training["progress"]["iteration"] == 30
    listed = client.get("/v1/models?limit=5", headers=caller.headers).json()["data"]
    assert next(m for m in listed if m["id"] == model_id)["sr_head_training"]["job_id"] == head.id

    again = client.post(f"/v1/models/{model_id}/sr-head", headers=caller.headers, json={"factor": 2})
    assert again.status_code == 409 and head.id in again.json()["detail"]
    # canceling the head leaves the model as it is
    stopped = client.post(f"/v1/jobs/{head.id}/cancel", headers=caller.headers)
    assert stopped.status_code == 200 and stopped.json()["cancel_requested"] is True
    body = client.get(f"/v1/models/{model_id}", headers=caller.headers).json()
    assert body["state"] == "succeeded" and body["links"]["checkpoint"]


def test_a_partial_model_gets_no_head(client: Any, caller: Any, db: Any) -> None:
    model_id = create_model(client, caller)["id"]
    with db.transaction() as session:
        model = session.get_one(Model, model_id)
        job = session.scalars(select(Job).where(Job.model_id == model_id, Job.kind == JobKind.TRAIN)).one()
        job.state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        model.train_config = {"mode": "generation", "train_stages": 3, "max_size": 32, "min_size": 16}
        model.stages_trained = 2
    body = client.get(f"/v1/models/{model_id}", headers=caller.headers).json()
    assert (body["stages_planned"], body["stages_trained"]) == (3, 2)
    response = client.post(f"/v1/models/{model_id}/sr-head", headers=caller.headers, json={"factor": 2})
    assert response.status_code == 409 and "complete pyramid" in response.json()["detail"]
    sample = client.post(f"/v1/models/{model_id}/samples", headers=caller.headers, json={"start_stage": 2})
    assert sample.status_code == 422 and "2 stages" in sample.json()["detail"]


def test_keep_on_a_training_requeued_since_it_was_read_discards_nothing(
    client: Any, caller: Any, db: Any, settings: Any, storage: Any
) -> None:
    # The caller saw it running with a finished stage; the reaper re-queued it before the cancel landed.
    model_id = create_model(client, caller)["id"]
    set_running(db, model_id, stages_done=2)
    seen_running = train_job(db, model_id)
    with db.transaction() as session:
        session.get_one(Job, seen_running.id).state = JobState.QUEUED.value
    services = Services(settings, db, storage, RecordingQueue())
    with pytest.raises(NothingToKeep, match="waits in the queue to resume"):
        service.cancel_job(services, seen_running, keep_trained_stages=True)
    job = train_job(db, model_id)
    assert job.state == JobState.QUEUED and not job.cancel_requested and not job.keep_trained_stages


def test_keep_after_a_plain_cancel_is_a_409_and_the_same_keep_again_is_answered_alike(
    client: Any, caller: Any, db: Any
) -> None:
    discarded = create_model(client, caller)["id"]
    set_running(db, discarded, stages_done=2)
    assert cancel(client, caller, discarded).status_code == 200
    # the worker may already be discarding it: a keep now would promise what it cannot
    response = cancel(client, caller, discarded, json={"keep_trained_stages": True})
    assert response.status_code == 409, response.text
    assert "already requested" in response.json()["detail"]
    assert not train_job(db, discarded).keep_trained_stages

    kept = create_model(client, caller)["id"]
    set_running(db, kept, stages_done=2)
    for _ in range(2):
        response = cancel(client, caller, kept, json={"keep_trained_stages": True})
        assert response.status_code == 200 and response.json()["cancel_requested"] is True
    assert cancel(client, caller, kept).status_code == 200  # a plain cancel after a keep: still keeping
    assert train_job(db, kept).keep_trained_stages
