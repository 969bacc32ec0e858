"""The model resource: create, read, list, cancel, delete; auth and ownership."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.models import Job, JobEvent, JobState, Model
from tests.service_fixtures import object_keys, scene_image

PROBLEM = "application/problem+json"


def create(client: Any, caller: Any, **fields: Any) -> Any:
    data = {"preset": "quick", **fields}
    files = {"image": ("scene.png", scene_image(), "image/png")}
    return client.post("/v1/models", headers=caller.headers, data=data, files=files)


def test_create_returns_202_location_and_queues_after_commit(
    client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    response = create(client, caller, train_stages=3, seed=5, webhook_url="https://example.com/h")
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/models/{body['id']}"
    assert body["state"] == "queued" and body["image"] == {"width": 48, "height": 40}
    assert body["params"] == {"preset": "quick", "mode": "generation", "train_stages": 3, "seed": 5}
    assert queue.jobs == [(body["train_job_id"], "train")]
    assert object_keys(storage, f"models/{body['id']}/") == [f"models/{body['id']}/input.png"]
    with db.read() as session:
        job = session.get_one(Job, body["train_job_id"])
        assert job.state == JobState.QUEUED and job.model_id == body["id"]
    read = client.get(body["links"]["self"], headers=caller.headers)
    assert read.status_code == 200 and read.json()["id"] == body["id"]


def test_seed_is_drawn_and_stored_when_unset(client: Any, caller: Any) -> None:
    params = create(client, caller).json()["params"]
    assert isinstance(params["seed"], int)


def test_other_owner_gets_404_everywhere(client: Any, caller: Any, make_caller: Any) -> None:
    body = create(client, caller).json()
    other = make_caller()
    for method, path in [
        ("GET", f"/v1/models/{body['id']}"),
        ("DELETE", f"/v1/models/{body['id']}"),
        ("POST", f"/v1/models/{body['id']}/cancel"),
        ("GET", f"/v1/models/{body['id']}/samples"),
        ("GET", f"/v1/jobs/{body['train_job_id']}"),
        ("GET", f"/v1/jobs/{body['train_job_id']}/events"),
    ]:
        response = client.request(method, path, headers=other.headers)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "https://consingan.dev/problems/not-found"
    assert client.get("/v1/models", headers=other.headers).json()["data"] == []


def test_missing_or_wrong_key_is_401_problem(client: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer csk_nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/v1/models", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"


def test_list_paginates_with_cursor_and_filters_by_state(client: Any, caller: Any) -> None:
    ids = [create(client, caller).json()["id"] for _ in range(3)]
    first = client.get("/v1/models?limit=2", headers=caller.headers).json()
    assert [m["id"] for m in first["data"]] == ids[::-1][:2] and first["next_cursor"]
    second = client.get(f"/v1/models?limit=2&after={first['next_cursor']}", headers=caller.headers).json()
    assert [m["id"] for m in second["data"]] == [ids[0]] and second["next_cursor"] is None
    client.post(f"/v1/models/{ids[1]}/cancel", headers=caller.headers)
    canceled = client.get("/v1/models?state=canceled", headers=caller.headers).json()["data"]
    assert [m["id"] for m in canceled] == [ids[1]]
    assert client.get("/v1/models?state=bogus", headers=caller.headers).status_code == 422


def test_cancel_queued_then_cancel_again_then_conflict_when_done(client: Any, caller: Any, db: Any) -> None:
    body = create(client, caller).json()
    response = client.post(f"/v1/models/{body['id']}/cancel", headers=caller.headers)
    assert response.status_code == 200 and response.json()["state"] == "canceled"
    assert client.post(f"/v1/models/{body['id']}/cancel", headers=caller.headers).status_code == 200
    done = create(client, caller).json()
    with db.transaction() as session:
        session.get_one(Job, done["train_job_id"]).state = JobState.SUCCEEDED.value
    conflict = client.post(f"/v1/models/{done['id']}/cancel", headers=caller.headers)
    assert conflict.status_code == 409 and conflict.json()["type"].endswith("/conflict")
    events = client.get(f"/v1/jobs/{body['train_job_id']}/events", headers=caller.headers).json()["data"]
    assert [e["type"] for e in events] == ["queued", "canceled"]


def test_delete_removes_rows_and_objects(client: Any, caller: Any, db: Any, storage: Any) -> None:
    body = create(client, caller).json()
    assert client.delete(f"/v1/models/{body['id']}", headers=caller.headers).status_code == 204
    assert client.get(f"/v1/models/{body['id']}", headers=caller.headers).status_code == 404
    assert object_keys(storage, f"models/{body['id']}/") == []
    with db.read() as session:
        assert session.get(Model, body["id"]) is None
        assert session.scalar(select(func.count()).where(JobEvent.job_id == body["train_job_id"])) == 0


def test_samples_need_a_trained_model(client: Any, caller: Any) -> None:
    body = create(client, caller).json()
    response = client.post(f"/v1/models/{body['id']}/samples", headers=caller.headers, json={"n": 2})
    assert response.status_code == 409 and response.json()["state"] == "queued"


def test_validation_errors_are_problems_with_field_errors(client: Any, caller: Any) -> None:
    response = create(client, caller, train_stages=99, mode="dreaming")
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "https://consingan.dev/problems/validation"
    assert {tuple(e["loc"]) for e in problem["errors"]} == {("body", "train_stages"), ("body", "mode")}
    unknown = create(client, caller, iter_per_stage=5)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["body", "iter_per_stage"]


def test_private_webhook_urls_refused_unless_allowed(make_client: Any, caller: Any) -> None:
    strict = make_client(allow_private_webhook_urls=False)
    response = create(strict, caller, webhook_url="http://169.254.169.254/latest")
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "webhook_url"]
    assert create(strict, caller, webhook_url="https://example.com/hook").status_code == 202


def test_unknown_routes_and_methods_are_problems(client: Any, caller: Any) -> None:
    missing = client.get("/v1/nothing", headers=caller.headers)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    wrong = client.put("/v1/models", headers=caller.headers)
    assert wrong.status_code == 405 and wrong.json()["type"].endswith("/method-not-allowed")
    # a static file takes GET and HEAD only: the mount's own Allow, not every method the API has
    static = client.post("/static/app.css")
    assert static.status_code == 405 and static.headers["allow"] == "GET, HEAD"


def test_unknown_webhook_event_is_a_validation_problem(client: Any, caller: Any) -> None:
    response = create(client, caller, webhook_url="https://example.com/h", webhook_events="model.exploded")
    assert response.status_code == 422 and response.json()["errors"][0]["loc"][:2] == [
        "body",
        "webhook_events",
    ]
    ok = create(
        client, caller, webhook_url="https://example.com/h", webhook_events="model.succeeded,job.failed"
    )
    assert ok.status_code == 202 and ok.json()["webhook_events"] == ["model.succeeded", "job.failed"]


def test_job_events_paginate_oldest_first(client: Any, caller: Any) -> None:
    body = create(client, caller).json()
    client.post(f"/v1/models/{body['id']}/cancel", headers=caller.headers)
    path = f"/v1/jobs/{body['train_job_id']}/events"
    first = client.get(f"{path}?limit=1", headers=caller.headers).json()
    assert [e["type"] for e in first["data"]] == ["queued"] and first["next_cursor"]
    rest = client.get(f"{path}?after={first['next_cursor']}", headers=caller.headers).json()
    assert [e["type"] for e in rest["data"]] == ["canceled"] and rest["next_cursor"] is None
    job = client.get(f"/v1/jobs/{body['train_job_id']}", headers=caller.headers).json()
    assert job["state"] == "canceled" and job["kind"] == "train" and job["samples"] is None


def test_min_size_above_max_size_is_a_422_and_creates_nothing(client: Any, caller: Any, db: Any) -> None:
    response = create(client, caller, min_size=64, max_size=32)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert (
        response.json()["detail"] == "body: min_size (64) must not exceed max_size (32)"
    )  # no "Value error"
    with db.read() as session:
        assert session.scalar(select(func.count()).where(Model.owner_id == caller.owner_id)) == 0
