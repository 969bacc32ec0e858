"""POST /v1/models/{id}/harmonizations: validation before anything is stored, job creation, idempotency,
downloads, and the training modes it relies on. No worker here (RecordingQueue): tests/worker has its own."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from core.models import Job, JobKind, JobState, Model
from core.storage import LocalStorage, checkpoint_key, job_object_key, job_output_key
from tests.service_fixtures import object_keys, scene_image

PROBLEM = "https://consingan.dev/problems/"


def mask_png(
    width: int = 48,
    height: int = 40,
    box: tuple[int, int, int, int] | None = (10, 10, 20, 20),
    value: int = 255,
) -> bytes:
    image = Image.new("L", (width, height), 0)
    if box:
        image.paste(value, box)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def new_model(client: Any, caller: Any, mode: str = "harmonization", **fields: str) -> dict[str, Any]:
    response = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "mode": mode, **fields},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def pretend_trained(db: Any, model_id: str, stages: int = 2) -> None:
    with db.transaction() as session:
        model = session.get_one(Model, model_id)
        job = session.scalars(select(Job).where(Job.model_id == model_id)).one()
        job.state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        model.train_config = {"train_stages": stages, "mode": "harmonization"}


def harmonize(
    client: Any,
    caller: Any,
    model_id: str,
    naive: bytes,
    mask: bytes,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Any:
    return client.post(
        f"/v1/models/{model_id}/harmonizations",
        headers={**caller.headers, **(headers or {})},
        data=fields,
        files={"naive": ("naive.png", naive, "image/png"), "mask": ("mask.png", mask, "image/png")},
    )


def job_count(db: Any, model_id: str) -> int:
    with db.read() as session:
        query = select(func.count()).where(Job.model_id == model_id, Job.kind == JobKind.HARMONIZE.value)
        return int(session.scalar(query) or 0)


@pytest.fixture
def trained(client: Any, caller: Any, db: Any, queue: Any) -> str:
    model_id: str = new_model(client, caller)["id"]
    pretend_trained(db, model_id)
    queue.jobs.clear()
    return model_id


BAD = {
    "mask-of-another-size": ({"mask": mask_png(40, 40)}, {}, 422, "validation", "same size"),
    "empty-mask": ({"mask": mask_png(box=None)}, {}, 422, "validation", "empty"),
    "mask-just-below-half-grey": ({"mask": mask_png(value=127)}, {}, 422, "validation", "empty"),
    "mask-not-an-image": ({"mask": b"<svg>no</svg>"}, {}, 422, "invalid-image", "mask:"),
    "naive-truncated": ({"naive": scene_image()[:200]}, {}, 422, "invalid-image", "naive:"),
    "mask-gif": ({"mask": scene_image(fmt="GIF")}, {}, 415, "unsupported-media-type", "mask:"),
    "stage-out-of-range": ({}, {"stage": "2"}, 422, "validation", "stage"),
    "stage-negative": ({}, {"stage": "-1"}, 422, "validation", "stage"),
    "fine-tune-iters-zero": (
        {},
        {"fine_tune": "true", "fine_tune_iters": "0"},
        422,
        "validation",
        "fine_tune_iters",
    ),
    "fine-tune-iters-without-fine-tune": ({}, {"fine_tune_iters": "5"}, 422, "validation", "fine_tune=true"),
    "unknown-field": ({}, {"fine_tune_iter": "5"}, 422, "validation", "fine_tune_iter"),
    "unknown-composite": ({}, {"composite": "sharp"}, 422, "validation", "composite"),
    "stage-sent-twice": ({}, {"stage": ["0", "1"]}, 422, "validation", "sent more than once: stage"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_harmonization_leaves_no_row_and_no_object(
    case: str, trained: str, client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    files, fields, status, slug, words = BAD[case]
    naive, mask = files.get("naive", scene_image()), files.get("mask", mask_png())
    before = set(object_keys(storage, f"models/{trained}/"))
    response = harmonize(client, caller, trained, naive, mask, **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM + slug and words in problem["detail"], problem
    assert job_count(db, trained) == 0 and queue.jobs == []
    assert set(object_keys(storage, f"models/{trained}/")) == before


def test_untrained_model_is_409_and_another_owners_model_404(
    client: Any, caller: Any, make_caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    model_id = new_model(client, caller)["id"]
    queue.jobs.clear()
    response = harmonize(client, caller, model_id, scene_image(), mask_png())
    assert response.status_code == 409 and response.json()["type"] == PROBLEM + "conflict"
    assert response.json()["state"] == "queued"
    assert job_count(db, model_id) == 0 and queue.jobs == []
    assert object_keys(storage, f"models/{model_id}/") == [f"models/{model_id}/input.png"]
    pretend_trained(db, model_id)
    other = harmonize(client, make_caller(), model_id, scene_image(), mask_png())
    assert other.status_code == 404 and job_count(db, model_id) == 0


def test_harmonization_job_is_queued_with_its_inputs_stored(
    trained: str, client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    response = harmonize(client, caller, trained, scene_image(), mask_png(), stage="1", fine_tune="true")
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["kind"] == "harmonize" and job["state"] == "queued" and job["result"] is None
    # quick preset: 50 fine-tuning iterations unless asked; the drawn seed is stored
    assert job["params"]["stage"] == 1 and job["params"]["fine_tune"] is True
    assert job["params"]["fine_tune_iters"] == 50 and isinstance(job["params"]["seed"], int)
    assert queue.jobs == [(job["id"], "harmonize")]
    naive_key = job_object_key(trained, job["id"], "naive.png")
    mask_key = job_object_key(trained, job["id"], "mask.png")
    assert {naive_key, mask_key} <= set(object_keys(storage, f"models/{trained}/jobs/"))
    with Image.open(io.BytesIO(storage.get(mask_key))) as stored:
        assert stored.format == "PNG" and stored.size == (48, 40)
    plain = harmonize(client, caller, trained, scene_image(), mask_png(), seed="4")
    assert plain.status_code == 202
    assert plain.json()["params"] == {"stage": 0, "composite": "detail", "fine_tune": False, "seed": 4}
    render = harmonize(client, caller, trained, scene_image(), mask_png(), composite="render")
    assert render.status_code == 202 and render.json()["params"]["composite"] == "render"


def test_idempotency_key_replays_and_refuses_another_mask(
    trained: str, client: Any, caller: Any, db: Any
) -> None:
    key = {"Idempotency-Key": "harmonize-once"}
    first = harmonize(client, caller, trained, scene_image(), mask_png(), headers=key)
    again = harmonize(client, caller, trained, scene_image(), mask_png(), headers=key)
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]
    other = harmonize(client, caller, trained, scene_image(), mask_png(box=(0, 0, 5, 5)), headers=key)
    assert other.status_code == 422 and other.json()["type"] == PROBLEM + "idempotency-conflict"
    assert job_count(db, trained) == 1


@pytest.mark.parametrize("layout", ["per-attempt", "before-jobs-result"])
def test_succeeded_job_streams_its_result_and_checkpoint_from_local_storage(
    layout: str, make_client: Any, caller: Any, make_caller: Any, db: Any, tmp_path: Path
) -> None:
    local = LocalStorage(tmp_path / "objects")
    client = make_client(storage=local)
    model_id = new_model(client, caller)["id"]
    pretend_trained(db, model_id)
    job_id = harmonize(client, caller, model_id, scene_image(), mask_png(), fine_tune="1").json()["id"]
    assert client.get(f"/v1/jobs/{job_id}/result", headers=caller.headers).status_code == 404  # not done
    files = ["result.png", "checkpoint.safetensors"]
    if layout == "per-attempt":  # as the worker leaves it: outputs under its attempt, listed in jobs.result
        keys = [job_output_key(model_id, job_id, 1, name) for name in files]
    else:  # jobs that succeeded before jobs.result existed
        keys = [job_object_key(model_id, job_id, name) for name in files]
    local.put(keys[0], scene_image(), "image/png")
    local.put(keys[1], b"weights", "application/octet-stream")
    with db.transaction() as session:
        job = session.get_one(Job, job_id)
        job.state = JobState.SUCCEEDED.value
        job.result = {"attempt": 1, "files": files} if layout == "per-attempt" else None
    result = client.get(f"/v1/jobs/{job_id}", headers=caller.headers).json()["result"]
    assert result["url"] == f"http://testserver/v1/jobs/{job_id}/result"
    assert result["checkpoint_url"] == f"http://testserver/v1/jobs/{job_id}/checkpoint"
    assert [(f["name"], f["media_type"]) for f in result["files"]] == [
        ("result.png", "image/png"),
        ("checkpoint.safetensors", "application/octet-stream"),
    ]
    download = client.get(result["url"], headers=caller.headers)
    assert download.status_code == 200 and download.content == scene_image()
    assert download.headers["content-type"] == "image/png"
    assert client.get(result["checkpoint_url"], headers=caller.headers).content == b"weights"
    assert client.get(result["files"][1]["url"], headers=caller.headers).content == b"weights"
    for url in (result["url"], result["checkpoint_url"], result["files"][1]["url"]):
        head = client.head(url, headers=caller.headers)
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    assert client.get(result["url"], headers=make_caller().headers).status_code == 404
    assert client.get(result["url"]).status_code == 401


def test_s3_result_url_is_presigned(trained: str, client: Any, caller: Any, db: Any) -> None:
    job_id = harmonize(client, caller, trained, scene_image(), mask_png()).json()["id"]
    with db.transaction() as session:
        session.get_one(Job, job_id).state = JobState.SUCCEEDED.value
    body = client.get(f"/v1/jobs/{job_id}", headers=caller.headers).json()
    assert "X-Amz-Signature" in body["result"]["url"] and body["result"]["checkpoint_url"] is None
    redirect = client.get(f"/v1/jobs/{job_id}/result", headers=caller.headers, follow_redirects=False)
    assert redirect.status_code == 307 and "X-Amz-Signature" in redirect.headers["location"]
    assert client.get(f"/v1/jobs/{job_id}/checkpoint", headers=caller.headers).status_code == 404


@pytest.mark.parametrize("mode", ["harmonization", "editing"])
def test_models_train_in_the_harmonization_modes(mode: str, client: Any, caller: Any) -> None:
    body = new_model(client, caller, mode=mode, train_stages="3")
    assert body["params"]["mode"] == mode and body["params"]["train_stages"] == 3


def test_unknown_mode_is_refused(client: Any, caller: Any) -> None:
    response = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"mode": "harmonisation"},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "mode"]


def test_a_json_body_is_415_naming_the_files_this_route_takes(trained: str, client: Any, caller: Any) -> None:
    response = client.post(f"/v1/models/{trained}/harmonizations", headers=caller.headers, json={"stage": 0})
    assert response.status_code == 415
    assert "`naive` and `mask`" in response.json()["detail"] and "`image`" not in response.json()["detail"]


def test_openapi_documents_the_route_with_examples(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/models/{model_id}/harmonizations"]["post"]
    assert {"202", "409", "422"} <= set(post["responses"])
    assert post["responses"]["202"]["content"]["application/json"]["example"]["kind"] == "harmonize"
    assert "/v1/jobs/{job_id}/result" in spec["paths"] and "/v1/jobs/{job_id}/checkpoint" in spec["paths"]
    assert "JobResultRead" in spec["components"]["schemas"]


def test_storage_failure_on_the_mask_removes_the_naive_image_and_the_row(
    make_client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    class FailsOnMask:
        def __getattr__(self, name: str) -> Any:
            return getattr(storage, name)

        def put(self, key: str, data: bytes, content_type: str) -> None:
            if key.endswith("/mask.png"):
                raise OSError("disk full")
            storage.put(key, data, content_type)

    client = make_client(storage=FailsOnMask())
    model_id = new_model(client, caller)["id"]
    pretend_trained(db, model_id)
    queue.jobs.clear()
    response = harmonize(client, caller, model_id, scene_image(), mask_png())
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    assert job_count(db, model_id) == 0 and queue.jobs == []
    assert object_keys(storage, f"models/{model_id}/jobs/") == []
