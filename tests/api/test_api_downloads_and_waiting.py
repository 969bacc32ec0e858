"""Local-storage downloads through the API, `Prefer: wait` without a worker, and a broker that is down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.ids import new_id
from core.models import Job, JobState, Model, Sample
from core.queue import CeleryQueue
from core.storage import LocalStorage, checkpoint_key, sample_key
from tests.service_fixtures import scene_image


def _post_model(client: Any, caller: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/v1/models",
        headers={**caller.headers, **(headers or {})},
        data={"preset": "quick"},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )


def _pretend_trained(db: Any, storage: Any, model_id: str) -> str:
    """Mark the training done and store one sample, as the worker would."""
    sample_id = new_id("smp")
    key = sample_key(model_id, sample_id)
    storage.put(key, scene_image(), "image/png")
    with db.transaction() as session:
        model = session.get_one(Model, model_id)
        job = session.scalars(select(Job).where(Job.model_id == model_id)).one()
        job.state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        session.add(
            Sample(id=sample_id, owner_id=model.owner_id, model_id=model_id, job_id=job.id, key=key,
                   width=48, height=40, size_bytes=1, is_preview=True)
        )  # fmt: skip
    return sample_id


def test_local_storage_streams_samples_to_their_owner_only(
    make_client: Any, caller: Any, make_caller: Any, db: Any, tmp_path: Path
) -> None:
    local = LocalStorage(tmp_path / "objects")
    client = make_client(storage=local)
    model_id = _post_model(client, caller).json()["id"]
    sample_id = _pretend_trained(db, local, model_id)
    (listed,) = client.get(f"/v1/models/{model_id}/samples", headers=caller.headers).json()["data"]
    assert listed["url"] == f"http://testserver/v1/models/{model_id}/samples/{sample_id}/content"
    download = client.get(listed["url"], headers=caller.headers)
    assert download.status_code == 200 and download.content == scene_image()
    assert download.headers["content-type"] == "image/png"
    assert client.get(listed["url"], headers=make_caller().headers).status_code == 404
    assert client.get(listed["url"]).status_code == 401
    missing = client.get(f"/v1/models/{model_id}/samples/{new_id('smp')}/content", headers=caller.headers)
    assert missing.status_code == 404


def test_download_routes_answer_head_without_a_body(
    make_client: Any, caller: Any, db: Any, tmp_path: Path
) -> None:
    local = LocalStorage(tmp_path / "objects")
    client = make_client(storage=local)
    model_id = _post_model(client, caller).json()["id"]
    sample_id = _pretend_trained(db, local, model_id)
    local.put(checkpoint_key(model_id), b"\x00" * 1234, "application/octet-stream")
    for url, size, media_type in (
        (f"/v1/models/{model_id}/samples/{sample_id}/content", len(scene_image()), "image/png"),
        (f"/v1/models/{model_id}/checkpoint", 1234, "application/octet-stream"),
    ):
        head = client.head(url, headers=caller.headers)
        assert head.status_code == 200 and head.content == b"", url
        assert head.headers["content-length"] == str(size) and head.headers["content-type"] == media_type
        assert client.head(url).status_code == 401
    missing = client.head(f"/v1/models/{model_id}/samples/{new_id('smp')}/content", headers=caller.headers)
    assert missing.status_code == 404
    assert "head" not in client.get("/openapi.json").json()["paths"]["/v1/models/{model_id}/checkpoint"]


def test_s3_downloads_redirect_to_a_presigned_url(client: Any, caller: Any, db: Any, storage: Any) -> None:
    model_id = _post_model(client, caller).json()["id"]
    sample_id = _pretend_trained(db, storage, model_id)
    response = client.get(
        f"/v1/models/{model_id}/samples/{sample_id}/content", headers=caller.headers, follow_redirects=False
    )
    assert response.status_code == 307 and "X-Amz-Signature" in response.headers["location"]


def test_prefer_wait_without_a_worker_returns_202_after_the_wait(client: Any, caller: Any) -> None:
    started = time.monotonic()
    response = _post_model(client, caller, {"Prefer": "wait=1"})
    assert response.status_code == 202 and 1.0 <= time.monotonic() - started < 10
    assert response.headers["preference-applied"] == "wait=1"


def test_sample_request_validation_and_start_stage_bound(
    client: Any, caller: Any, db: Any, storage: Any
) -> None:
    model_id = _post_model(client, caller).json()["id"]
    _pretend_trained(db, storage, model_id)
    with db.transaction() as session:
        session.get_one(Model, model_id).train_config = {"train_stages": 3}
    url = f"/v1/models/{model_id}/samples"
    assert client.post(url, headers=caller.headers, json={"n": 0}).status_code == 422
    assert client.post(url, headers=caller.headers, json={"scale_w": 10}).status_code == 422
    assert client.post(url, headers=caller.headers, json={"n": 1, "bogus": 1}).status_code == 422
    too_deep = client.post(url, headers=caller.headers, json={"start_stage": 3})
    assert too_deep.status_code == 422 and too_deep.json()["errors"][0]["loc"] == ["body", "start_stage"]
    assert client.post(
        url,
        headers=caller.headers,
        content=b"n=1",
    ).status_code in (415, 422)
    ok = client.post(url, headers=caller.headers, json={"n": 2, "start_stage": 2})
    assert ok.status_code == 202 and ok.headers["location"] == f"/v1/jobs/{ok.json()['id']}"


def test_unreachable_broker_fails_the_job_and_answers_503(
    make_client: Any, settings: Any, caller: Any, db: Any
) -> None:
    dead = CeleryQueue(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    dead.app.conf.broker_connection_timeout = 1
    client = make_client(queue=dead)
    response = _post_model(client, caller)
    assert response.status_code == 503 and response.json()["type"].endswith("/unavailable")
    assert response.headers["retry-after"] == "10"  # the broker may be back after a restart
    with db.read() as session:
        (job,) = session.scalars(select(Job).where(Job.owner_id == caller.owner_id)).all()
        assert job.state == JobState.FAILED and "queue" in (job.error or "")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("unavailable")


def test_a_retry_after_a_503_with_the_same_idempotency_key_really_retries(
    make_client: Any, settings: Any, caller: Any
) -> None:
    dead = CeleryQueue(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    dead.app.conf.broker_connection_timeout = 1
    key = {"Idempotency-Key": "retry-after-503"}
    assert _post_model(make_client(queue=dead), caller, key).status_code == 503
    retried = _post_model(make_client(), caller, key)  # the broker is back
    assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers
    assert retried.json()["state"] == "queued"


def test_checkpoint_downloads_once_trained_and_only_for_its_owner(
    make_client: Any, caller: Any, make_caller: Any, db: Any, storage: Any, tmp_path: Path
) -> None:
    local = LocalStorage(tmp_path / "objects")
    client = make_client(storage=local)
    model_id = _post_model(client, caller).json()["id"]
    early = client.get(f"/v1/models/{model_id}/checkpoint", headers=caller.headers)
    assert early.status_code == 409 and early.json()["state"] == "queued"
    _pretend_trained(db, local, model_id)
    local.put(checkpoint_key(model_id), b"safetensors bytes", "application/octet-stream")
    body = client.get(f"/v1/models/{model_id}", headers=caller.headers).json()
    assert body["links"]["checkpoint"] == f"/v1/models/{model_id}/checkpoint"
    download = client.get(body["links"]["checkpoint"], headers=caller.headers)
    assert download.status_code == 200 and download.content == b"safetensors bytes"
    assert download.headers["content-type"] == "application/octet-stream"
    assert f"{model_id}.safetensors" in download.headers["content-disposition"]
    assert client.get(body["links"]["checkpoint"], headers=make_caller().headers).status_code == 404
    on_s3 = make_client()  # presigned on S3
    _pretend_trained(db, storage, model_id)
    redirect = on_s3.get(body["links"]["checkpoint"], headers=caller.headers, follow_redirects=False)
    assert redirect.status_code == 307 and "X-Amz-Signature" in redirect.headers["location"]
