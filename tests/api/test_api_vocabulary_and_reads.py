"""The read routes the page stands on (any client may use them): the vocabulary, the pyramid an image would get,
a model's input image and stage previews, the job list, deleting one sample, and the page itself at `/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from sqlalchemy import select

from core import jobs
from core.ids import new_id
from core.images import validate_image
from core.models import Job, JobKind, JobState, Model, Sample
from core.storage import LocalStorage, checkpoint_key, sample_key, stage_preview_key
from core.vocabulary import MODES, PRESETS
from engine.spec import request_config
from engine.spec.config import TrainConfig
from engine.spec.geometry import stage_sizes
from tests.api.helpers import create_model
from tests.service_fixtures import object_keys, scene_image

PROBLEM = "application/problem+json"


def pretend_trained(db: Any, storage: Any, model_id: str) -> str:
    """The training succeeded and left one preview sample, as the worker would; returns the sample id."""
    sample_id = new_id("smp")
    key = sample_key(model_id, sample_id)
    storage.put(key, scene_image(), "image/png")
    with db.transaction() as session:
        model = session.get_one(Model, model_id)
        job = session.scalars(select(Job).where(Job.model_id == model_id)).one()
        job.state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        model.train_config = request_config(model.params).to_dict()
        session.add(
            Sample(id=sample_id, owner_id=model.owner_id, model_id=model_id, job_id=job.id, key=key,
                   width=48, height=40, size_bytes=1, is_preview=True)
        )  # fmt: skip
    return sample_id


# --- vocabulary and pyramid ------------------------------------------------------------------------------------


def test_vocabulary_publishes_the_engines_presets_and_the_services_limits(
    client: Any, caller: Any, settings: Any
) -> None:
    body = client.get("/v1/vocabulary", headers=caller.headers).json()
    assert [m["name"] for m in body["modes"]] == list(MODES) and all(m["description"] for m in body["modes"])
    assert [p["name"] for p in body["presets"]] == list(PRESETS)
    for preset in body["presets"]:
        for mode in MODES:
            assert TrainConfig.from_dict(preset["modes"][mode]) == TrainConfig.preset(preset["name"], mode)
    assert set(body["job_kinds"]) == {kind.value for kind in JobKind}
    assert body["default_composite"] in body["composites"]
    limits = body["limits"]
    assert limits["train_stages"] == {"min": 2, "max": 12}
    assert limits["max_upload_bytes"] == settings.max_upload_bytes
    assert limits["sample_scale"] == {"min": 0.5, "max": 2.0}
    assert client.get("/v1/vocabulary").status_code == 401


@pytest.mark.parametrize(
    ("width", "height", "params"),
    [
        (1024, 768, {"preset": "quick"}),
        (1024, 768, {"preset": "paper", "mode": "harmonization"}),
        (300, 500, {"preset": "quick", "mode": "animation", "train_stages": 3, "max_size": 40}),
        (512, 512, {"preset": "paper", "max_size": 64, "min_size": 16, "train_stages": 4}),
    ],
)
def test_pyramid_is_the_one_the_worker_would_train(
    client: Any, caller: Any, width: int, height: int, params: dict[str, Any]
) -> None:
    query = {"width": width, "height": height, **params}
    response = client.get("/v1/pyramid", params=query, headers=caller.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    cfg = request_config(params)
    expected = stage_sizes(height, width, cfg)
    assert [(s["height"], s["width"]) for s in body["stages"]] == expected
    assert (body["top"]["height"], body["top"]["width"]) == expected[-1]
    assert body["image"] == {"width": width, "height": height}
    assert TrainConfig.from_dict(body["train_config"]) == cfg


def test_pyramid_refuses_what_training_would_refuse(client: Any, caller: Any) -> None:
    def get(**params: Any) -> Any:
        return client.get("/v1/pyramid", params=params, headers=caller.headers)

    too_small = get(width=300, height=20, preset="paper")
    assert too_small.status_code == 422 and too_small.headers["content-type"] == PROBLEM
    assert "below min_size=25 px" in too_small.json()["detail"]  # the engine's own words
    assert get(width=64, height=64, preset="quick", min_size=40, max_size=30).status_code == 422
    assert get(width=64, height=64, preset="nope").status_code == 422
    assert get(width=64, height=64, iters=3).status_code == 422  # a misspelt field is refused
    assert get(height=64).status_code == 422
    assert client.get("/v1/pyramid?width=64&height=64").status_code == 401


# --- a model's input, its stage previews, its samples -----------------------------------------------------------


def test_model_input_and_stage_previews_stream_to_their_owner_only(
    make_client: Any, caller: Any, make_caller: Any, db: Any, tmp_path: Path
) -> None:
    local = LocalStorage(tmp_path / "objects")
    client = make_client(storage=local)
    model = create_model(client, caller)
    assert model["input_url"] == f"http://testserver/v1/models/{model['id']}/input"
    download = client.get(model["input_url"], headers=caller.headers)
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    assert download.content == validate_image(scene_image(), max_pixels=10**6, max_side=4096, min_side=16).png
    assert client.get(model["input_url"], headers=make_caller().headers).status_code == 404
    assert client.get(model["input_url"]).status_code == 401

    preview = f"/v1/models/{model['id']}/stages/0/preview"
    missing = client.get(preview, headers=caller.headers)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    local.put(stage_preview_key(model["id"], 0), scene_image(24, 20), "image/png")
    shown = client.get(preview, headers=caller.headers)
    assert shown.status_code == 200 and shown.content == scene_image(24, 20)
    assert client.get(preview, headers=make_caller().headers).status_code == 404
    assert (
        client.get(f"/v1/models/{model['id']}/stages/99/preview", headers=caller.headers).status_code == 422
    )


def test_stage_done_events_link_their_preview(client: Any, caller: Any, db: Any, storage: Any) -> None:
    model = create_model(client, caller)
    job_id = model["train_job_id"]
    with db.transaction() as session:
        assert jobs.claim(session, job_id, "w", max_attempts=3)
        preview = {"width": 21, "height": 16}
        assert jobs.record_stage_done(session, job_id, 1, attempt=1, preview=preview)
        assert jobs.record_stage_done(session, job_id, 2, attempt=1)  # an older worker's: no preview
    events = client.get(f"/v1/jobs/{job_id}/events", headers=caller.headers).json()["data"]
    first, second = (e for e in events if e["type"] == "stage_done")
    assert first["data"] == {"stages_done": 1, "stage": 0, "preview": preview}
    url = first["links"]["preview"]
    assert url.startswith(f"{storage.presigned_url(stage_preview_key(model['id'], 0)).split('?')[0]}?")
    assert second["links"] == {"preview": None}
    assert all(e["links"] == {"preview": None} for e in events if e["type"] != "stage_done")


def test_deleting_a_sample_removes_its_row_and_image(
    client: Any, caller: Any, make_caller: Any, db: Any, storage: Any
) -> None:
    model_id = create_model(client, caller)["id"]
    sample_id = pretend_trained(db, storage, model_id)
    path = f"/v1/models/{model_id}/samples/{sample_id}"
    assert client.delete(path, headers=make_caller().headers).status_code == 404
    assert client.delete(path, headers=caller.headers).status_code == 204
    assert client.get(f"/v1/models/{model_id}/samples", headers=caller.headers).json()["data"] == []
    assert object_keys(storage, f"models/{model_id}/samples/") == []
    again = client.delete(path, headers=caller.headers)
    assert again.status_code == 404 and again.headers["content-type"] == PROBLEM
    other_model = create_model(client, caller)["id"]  # a sample id under another model of the same owner
    other_sample = pretend_trained(db, storage, other_model)
    assert (
        client.delete(f"/v1/models/{model_id}/samples/{other_sample}", headers=caller.headers).status_code
        == 404
    )


class _StorageThatCannotDelete:
    """The test storage, except that deleting finds it unavailable (refused connections)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, key: str) -> None:
        raise EndpointConnectionError(endpoint_url="http://storage")

    def delete_prefix(self, prefix: str) -> int:
        raise EndpointConnectionError(endpoint_url="http://storage")


def test_a_delete_committed_while_storage_is_away_succeeds_and_leaves_the_objects_to_the_sweep(
    make_client: Any, caller: Any, db: Any, storage: Any
) -> None:
    client = make_client(storage=_StorageThatCannotDelete(storage))
    model_id = create_model(client, caller)["id"]
    sample_id = pretend_trained(db, storage, model_id)
    assert (
        client.delete(f"/v1/models/{model_id}/samples/{sample_id}", headers=caller.headers).status_code == 204
    )
    assert client.get(f"/v1/models/{model_id}/samples", headers=caller.headers).json()["data"] == []
    assert client.delete(f"/v1/models/{model_id}", headers=caller.headers).status_code == 204
    assert client.get(f"/v1/models/{model_id}", headers=caller.headers).status_code == 404
    # the rows are gone and their objects stayed: the orphan sweep's to remove (tests/core/test_core_cleanup.py)
    assert object_keys(storage, f"models/{model_id}/samples/") == [sample_key(model_id, sample_id)]


# --- the job list -------------------------------------------------------------------------------------------------


def test_jobs_list_filters_by_model_kind_and_state_for_their_owner_only(
    client: Any, caller: Any, make_caller: Any, db: Any, storage: Any
) -> None:
    first = create_model(client, caller)["id"]
    second = create_model(client, caller)["id"]
    pretend_trained(db, storage, first)
    with db.transaction() as session:
        model = session.get_one(Model, first)
        animate = jobs.create_job(session, model, JobKind.ANIMATE, {"frames": 10})
        sample = jobs.create_job(session, model, JobKind.SAMPLE, {"n": 2})

    def listed(**params: Any) -> list[str]:
        response = client.get("/v1/jobs", params=params, headers=caller.headers)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["data"]]

    train_first = client.get(f"/v1/models/{first}", headers=caller.headers).json()["train_job_id"]
    assert listed(model_id=first) == [sample.id, animate.id, train_first]  # newest first
    assert listed(model_id=first, kind="animate") == [animate.id]
    assert listed(model_id=first, state="succeeded") == [train_first]
    assert len(listed()) == 4 and set(listed(kind="train")) >= {train_first}
    assert listed(model_id=second, kind="sample") == []

    page = client.get("/v1/jobs", params={"model_id": first, "limit": 2}, headers=caller.headers).json()
    assert [j["id"] for j in page["data"]] == [sample.id, animate.id] and page["next_cursor"] == animate.id
    rest = listed(model_id=first, limit=2, after=page["next_cursor"])
    assert rest == [train_first]

    stranger = client.get("/v1/jobs", params={"model_id": first}, headers=make_caller().headers)
    assert stranger.status_code == 200 and stranger.json()["data"] == []
    assert client.get("/v1/jobs?kind=bake", headers=caller.headers).status_code == 422
    assert client.get("/v1/jobs").status_code == 401


# --- the page -------------------------------------------------------------------------------------------------------


def test_the_page_is_served_at_the_root_and_stays_out_of_the_api_schema(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="/static/js/main.js">' in page.text
    script = client.get("/static/js/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert client.get("/static/js/nothing.js").status_code == 404
    assert client.get("/static/../app.py").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(path.startswith("/static") for path in paths)
    assert {"/v1/vocabulary", "/v1/pyramid", "/v1/jobs", "/v1/models/{model_id}/input"} <= set(paths)
