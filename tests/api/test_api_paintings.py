"""POST /v1/models/{id}/paintings: validation before anything is stored (hostile uploads included), the
modes that can paint, job creation, idempotency, Prefer: wait and downloads. No worker here (RecordingQueue):
tests/worker/test_worker_paint.py runs the job, tests/e2e/test_e2e_paint.py both together."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from core.models import Job, JobKind, JobState, Model
from core.storage import LocalStorage, checkpoint_key, job_object_key, job_output_key
from tests.service_fixtures import object_keys, png_header_only, png_of_zeros, scene_image

PROBLEM = "https://consingan.dev/problems/"
PNG = scene_image()


def new_model(client: Any, caller: Any, mode: str = "generation") -> str:
    response = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "mode": mode},
        files={"image": ("scene.png", PNG, "image/png")},
    )
    assert response.status_code == 202, response.text
    model_id: str = response.json()["id"]
    return model_id


def pretend_trained(db: Any, model_id: str, mode: str = "generation", stages: int = 4) -> None:
    with db.transaction() as session:
        model = session.get_one(Model, model_id)
        job = session.scalars(select(Job).where(Job.model_id == model_id)).one()
        job.state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        model.train_config = {"train_stages": stages, "mode": mode}


def paint(
    client: Any,
    caller: Any,
    model_id: str,
    painting: bytes = PNG,
    headers: dict[str, str] | None = None,
    content_type: str = "image/png",
    filename: str = "painting.png",
    **fields: Any,
) -> Any:
    return client.post(
        f"/v1/models/{model_id}/paintings",
        headers={**caller.headers, **(headers or {})},
        data=fields,
        files={"painting": (filename, painting, content_type)},
    )


def paint_jobs(db: Any, model_id: str) -> int:
    with db.read() as session:
        query = select(func.count()).where(Job.model_id == model_id, Job.kind == JobKind.PAINT.value)
        return int(session.scalar(query) or 0)


@pytest.fixture
def trained(client: Any, caller: Any, db: Any, queue: Any) -> str:
    model_id = new_model(client, caller)
    pretend_trained(db, model_id)
    queue.jobs.clear()
    return model_id


BAD: dict[str, tuple[bytes, str, dict[str, Any], int, str, str]] = {
    "stage-zero": (PNG, "image/png", {"stage": "0"}, 422, "validation", "stage"),
    "stage-at-the-stage-count": (PNG, "image/png", {"stage": "4"}, 422, "validation", "between 1 and 3"),
    "stage-negative": (PNG, "image/png", {"stage": "-1"}, 422, "validation", "stage"),
    "stage-not-a-number": (PNG, "image/png", {"stage": "one"}, 422, "validation", "stage"),
    "n-zero": (PNG, "image/png", {"n": "0"}, 422, "validation", "n"),
    "n-too-many": (PNG, "image/png", {"n": "9"}, 422, "validation", "n"),
    "quantize-not-a-bool": (PNG, "image/png", {"quantize": "maybe"}, 422, "validation", "quantize"),
    "seed-negative": (PNG, "image/png", {"seed": "-3"}, 422, "validation", "seed"),
    "unknown-field": (PNG, "image/png", {"quantise": "true"}, 422, "validation", "quantise"),
    "stage-sent-twice": (PNG, "image/png", {"stage": ["1", "2"]}, 422, "validation", "sent more than once"),
    "truncated": (PNG[:200], "image/png", {}, 422, "invalid-image", "painting:"),
    "not-an-image": (b"<svg>no</svg>", "image/png", {}, 422, "invalid-image", "painting:"),
    "gif": (scene_image(fmt="GIF"), "image/gif", {}, 415, "unsupported-media-type", "painting:"),
    "declared-html": (PNG, "text/html", {}, 415, "unsupported-media-type", "painting part is declared"),
    "decompression-bomb": (png_of_zeros(3000, 3000), "image/png", {}, 422, "invalid-image", "painting:"),
    "1e9-pixel-header": (png_header_only(40000, 25000), "image/png", {}, 422, "invalid-image", "painting:"),
    "png-signature-then-html": (
        b"\x89PNG\r\n\x1a\n<script>alert(1)</script>",
        "image/png",
        {},
        422,
        "invalid-image",
        "painting:",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_painting_requests_leave_no_row_and_no_object(
    case: str, make_client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    client = make_client(max_image_pixels=4_000_000)
    model_id = new_model(client, caller)
    pretend_trained(db, model_id)
    queue.jobs.clear()
    body, content_type, fields, status, slug, words = BAD[case]
    before = set(object_keys(storage, f"models/{model_id}/"))
    response = paint(client, caller, model_id, body, content_type=content_type, **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM + slug and words in problem["detail"], problem
    assert paint_jobs(db, model_id) == 0 and queue.jobs == []
    assert set(object_keys(storage, f"models/{model_id}/")) == before


def test_an_oversized_painting_is_413_and_stores_nothing(
    make_client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    client = make_client(max_upload_bytes=20_000)
    model_id = new_model(client, caller)
    pretend_trained(db, model_id)
    queue.jobs.clear()
    noise = Image.frombytes("RGB", (200, 150), random.Random(0).randbytes(200 * 150 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    big = out.getvalue()  # noise does not compress: ~90 kB
    assert len(big) > 20_000
    response = paint(client, caller, model_id, big)
    assert response.status_code == 413 and response.json()["type"] == PROBLEM + "payload-too-large"
    assert paint_jobs(db, model_id) == 0 and queue.jobs == []
    assert object_keys(storage, f"models/{model_id}/jobs/") == []


def test_a_json_body_is_415_naming_the_painting(trained: str, client: Any, caller: Any) -> None:
    response = client.post(f"/v1/models/{trained}/paintings", headers=caller.headers, json={"stage": 1})
    assert response.status_code == 415 and "`painting`" in response.json()["detail"]


@pytest.mark.parametrize("mode", ["harmonization", "editing", "animation"])
def test_models_that_never_read_the_photo_cannot_paint(
    mode: str, client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    model_id = new_model(client, caller, mode=mode)
    pretend_trained(db, model_id, mode=mode, stages=3)
    queue.jobs.clear()
    response = paint(client, caller, model_id)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == PROBLEM + "validation"
    assert f"a {mode} model cannot turn a painting into an image" in problem["detail"]
    assert "generation, retarget" in problem["detail"]
    assert paint_jobs(db, model_id) == 0 and queue.jobs == []
    assert object_keys(storage, f"models/{model_id}/jobs/") == []


def test_the_vocabulary_names_the_modes_that_paint(client: Any, caller: Any) -> None:
    # the page shows its Paint button from this list
    body = client.get("/v1/vocabulary", headers=caller.headers).json()
    assert body["paint_modes"] == ["generation", "retarget"]


@pytest.mark.parametrize("mode", ["generation", "retarget"])
def test_models_trained_on_the_photo_can_paint(mode: str, client: Any, caller: Any, db: Any) -> None:
    model_id = new_model(client, caller, mode=mode)
    pretend_trained(db, model_id, mode=mode)
    assert paint(client, caller, model_id).status_code == 202


def test_untrained_model_is_409_and_another_owners_model_404(
    client: Any, caller: Any, make_caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    model_id = new_model(client, caller)
    queue.jobs.clear()
    response = paint(client, caller, model_id)
    assert response.status_code == 409 and response.json()["type"] == PROBLEM + "conflict"
    assert paint_jobs(db, model_id) == 0 and queue.jobs == []
    assert object_keys(storage, f"models/{model_id}/") == [f"models/{model_id}/input.png"]
    pretend_trained(db, model_id)
    other = paint(client, make_caller(), model_id)
    assert other.status_code == 404 and paint_jobs(db, model_id) == 0


def test_a_paint_job_is_queued_with_its_painting_stored(
    trained: str, client: Any, caller: Any, storage: Any, queue: Any
) -> None:
    payload = b"PK\x03\x04<html><script>alert(1)</script></html>"  # a polyglot tail never reaches storage
    response = paint(
        client, caller, trained, PNG + payload, filename="../../etc/passwd", stage="2", quantize="true", n="3"
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["kind"] == "paint" and job["state"] == "queued" and job["result"] is None
    assert job["params"]["stage"] == 2 and job["params"]["quantize"] is True and job["params"]["n"] == 3
    assert isinstance(job["params"]["seed"], int)
    assert queue.jobs == [(job["id"], "paint")]
    key = job_object_key(trained, job["id"], "painting.png")
    assert object_keys(storage, f"models/{trained}/jobs/") == [key]
    stored = storage.get(key)
    assert stored.startswith(b"\x89PNG") and payload not in stored
    plain = paint(client, caller, trained, seed="4")
    assert plain.json()["params"] == {"stage": 1, "quantize": False, "n": 1, "seed": 4}


def test_idempotency_key_replays_and_refuses_another_painting(
    trained: str, client: Any, caller: Any, db: Any
) -> None:
    key = {"Idempotency-Key": "paint-once"}
    first = paint(client, caller, trained, headers=key)
    again = paint(client, caller, trained, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]
    other = paint(client, caller, trained, scene_image(48, 40, fmt="JPEG"), headers=key)
    assert other.status_code == 422 and other.json()["type"] == PROBLEM + "idempotency-conflict"
    assert paint_jobs(db, trained) == 1


def test_prefer_wait_without_a_worker_answers_202_after_the_wait(
    trained: str, client: Any, caller: Any
) -> None:
    started = time.monotonic()
    response = paint(client, caller, trained, headers={"Prefer": "wait=1"})
    assert response.status_code == 202 and 1.0 <= time.monotonic() - started < 10
    assert response.headers["preference-applied"] == "wait=1"


def test_the_queue_cap_applies(make_client: Any, caller: Any, db: Any) -> None:
    client = make_client(max_queued_jobs_per_owner=2)
    model_id = new_model(client, caller)  # its train job is one unfinished job until marked done
    pretend_trained(db, model_id)
    assert paint(client, caller, model_id).status_code == 202
    assert paint(client, caller, model_id).status_code == 202
    refused = paint(client, caller, model_id)
    assert refused.status_code == 429 and refused.json()["type"] == PROBLEM + "too-many-jobs"


def test_a_succeeded_paint_job_lists_and_streams_its_images(
    make_client: Any, caller: Any, make_caller: Any, db: Any, tmp_path: Path
) -> None:
    local = LocalStorage(tmp_path / "objects")
    client = make_client(storage=local)
    model_id = new_model(client, caller)
    pretend_trained(db, model_id)
    job_id = paint(client, caller, model_id, n="2").json()["id"]
    files = ["paint_0.png", "paint_1.png"]
    images = [scene_image(64, 48), scene_image(50, 40)]
    for name, data in zip(files, images, strict=True):
        local.put(job_output_key(model_id, job_id, 1, name), data, "image/png")
    with db.transaction() as session:
        job = session.get_one(Job, job_id)
        job.state = JobState.SUCCEEDED.value
        job.result = {"attempt": 1, "files": files, "stage": 1, "width": 64, "height": 48}
    result = client.get(f"/v1/jobs/{job_id}", headers=caller.headers).json()["result"]
    assert [f["name"] for f in result["files"]] == files
    assert {f["media_type"] for f in result["files"]} == {"image/png"}
    assert result["stage"] == 1 and (result["width"], result["height"]) == (64, 48)
    assert result["url"] == f"http://testserver/v1/jobs/{job_id}/files/paint_0.png"
    download = client.get(result["files"][1]["url"], headers=caller.headers)
    assert download.status_code == 200 and download.content == images[1]
    assert download.headers["content-type"] == "image/png"
    assert client.get(result["url"], headers=make_caller().headers).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/files/painting.png", headers=caller.headers).status_code == 404


def test_openapi_documents_the_route_with_examples(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/models/{model_id}/paintings"]["post"]
    assert {"202", "409", "413", "415", "422"} <= set(post["responses"])
    assert post["responses"]["202"]["content"]["application/json"]["example"]["kind"] == "paint"
    assert "paint" in spec["components"]["schemas"]["JobKind"]["enum"]
