"""Super-resolution over HTTP: what is refused before anything is queued (no head, not trained, an upload,
an output over the cap, another owner's model or sample), and what is queued."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.ids import new_id
from core.models import Job, JobKind, JobState, Model, Sample, utcnow
from core.storage import checkpoint_key, sample_key, sr_head_key
from tests.api.helpers import create_model
from tests.service_fixtures import scene_image

PROBLEM = "https://consingan.dev/problems/"
HEAD = {"key": "", "sr_train": 4.0, "passes": 6, "r0": 0.7937, "noise_amp": 0.02, "iterations": 600}


def pretend_trained(db: Any, model_id: str, head: bool = True, mode: str = "generation") -> None:
    """As the worker leaves a 48x40 upload trained at max_size 32 (top stage 27x32), with an SR head."""
    with db.transaction() as session:
        model = session.get_one(Model, model_id)
        train = select(Job).where(Job.model_id == model_id, Job.kind == JobKind.TRAIN)
        session.scalars(train).one().state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        model.train_config = {"mode": mode, "train_stages": 2, "max_size": 32, "min_size": 16}
        head_key = sr_head_key(model_id, new_id("job"), 1)
        model.sr_head = {**HEAD, "key": head_key} if head else None


def enlarge(client: Any, caller: Any, model_id: str, **body: Any) -> Any:
    return client.post(f"/v1/models/{model_id}/super-resolutions", headers=caller.headers, json=body)


def jobs_of(db: Any, model_id: str, kind: JobKind) -> int:
    with db.read() as session:
        return int(
            session.scalar(select(func.count()).where(Job.model_id == model_id, Job.kind == kind)) or 0
        )


@pytest.fixture
def trained(client: Any, caller: Any, db: Any, queue: Any) -> str:
    model_id: str = create_model(client, caller)["id"]
    pretend_trained(db, model_id)
    queue.jobs.clear()
    return model_id


def test_super_resolve_job_is_queued_with_the_heads_factor(
    trained: str, client: Any, caller: Any, queue: Any
) -> None:
    response = enlarge(client, caller, trained, n=2, seed=3)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "super_resolve" and job["state"] == "queued"
    assert job["params"] == {"factor": 4.0, "n": 2, "noise_scale": 1.0, "seed": 3, "sample_id": None}
    assert queue.jobs == [(job["id"], "super_resolve")]
    model = client.get(f"/v1/models/{trained}", headers=caller.headers).json()
    assert model["sr_head"]["sr_train"] == 4.0 and model["sr_head"]["passes"] == 6
    assert model["sr_head"]["max_factor"] == 8.0  # 27x32 x8 is far under the 2048^2 cap
    assert model["links"]["super_resolutions"] == f"/v1/models/{trained}/super-resolutions"


def test_a_model_without_a_head_is_409_saying_how_to_get_one(
    client: Any, caller: Any, db: Any, queue: Any
) -> None:
    model_id = create_model(client, caller)["id"]
    pretend_trained(db, model_id, head=False)
    queue.jobs.clear()
    response = enlarge(client, caller, model_id)
    assert response.status_code == 409 and response.json()["type"] == PROBLEM + "sr-head-missing"
    assert f"/v1/models/{model_id}/sr-head" in response.json()["detail"] and queue.jobs == []
    links = client.get(f"/v1/models/{model_id}", headers=caller.headers).json()["links"]
    assert links["sr_head"] == f"/v1/models/{model_id}/sr-head"


def test_an_untrained_model_is_409_and_another_owners_404(
    client: Any, caller: Any, make_caller: Any, db: Any
) -> None:
    model_id = create_model(client, caller)["id"]
    early = enlarge(client, caller, model_id)
    assert early.status_code == 409 and early.json()["type"] == PROBLEM + "conflict"
    pretend_trained(db, model_id)
    assert enlarge(client, make_caller(), model_id).status_code == 404
    assert jobs_of(db, model_id, JobKind.SUPER_RESOLVE) == 0


def test_an_uploaded_image_is_415_saying_what_to_do_instead(trained: str, client: Any, caller: Any) -> None:
    response = client.post(
        f"/v1/models/{trained}/super-resolutions",
        headers=caller.headers,
        files={"image": ("photo.png", scene_image(), "image/png")},
    )
    assert response.status_code == 415 and response.json()["type"] == PROBLEM + "unsupported-media-type"
    assert "train a model on it" in response.json()["detail"]
    raw = client.post(
        f"/v1/models/{trained}/super-resolutions",
        headers={**caller.headers, "content-type": "image/png"},
        content=scene_image(),
    )
    assert raw.status_code == 415 and "training image or one of its samples" in raw.json()["detail"]


def test_an_output_over_the_cap_is_422_with_the_largest_factor(
    make_client: Any, caller: Any, db: Any, queue: Any
) -> None:
    client = make_client(max_sr_output_pixels=10_000)  # 27x32 at most x3.4 (96x86 is 8256 pixels)
    model_id = create_model(client, caller)["id"]
    pretend_trained(db, model_id)
    queue.jobs.clear()
    response = enlarge(client, caller, model_id, factor=4.0)
    assert response.status_code == 422 and response.json()["type"] == PROBLEM + "output-too-large"
    assert response.json()["max_factor"] == 3.4 and "3.4" in response.json()["detail"]
    assert response.json()["errors"][0]["loc"] == ["body", "factor"] and queue.jobs == []
    assert enlarge(client, caller, model_id, factor=3.4).status_code == 202
    assert client.get(f"/v1/models/{model_id}", headers=caller.headers).json()["sr_head"]["max_factor"] == 3.4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"factor": 1.0}, "factor"),
        ({"factor": 8.5}, "factor"),
        ({"factor": "4"}, "factor"),  # strict JSON numbers
        ({"n": 5}, "n"),
        ({"noise_scale": 2.5}, "noise_scale"),
        ({"source": "upload"}, "source"),
        ({"source": {"url": "https://example.com/a.png"}}, "source"),
        ({"scale": 4}, "scale"),
    ],
)
def test_bad_fields_are_422_and_queue_nothing(
    body: dict[str, Any], field: str, trained: str, client: Any, caller: Any, queue: Any
) -> None:
    response = enlarge(client, caller, trained, **body)
    assert response.status_code == 422, response.text
    assert field in response.text and queue.jobs == []


def test_a_sample_of_this_model_is_a_source_and_another_models_is_404(
    trained: str, client: Any, caller: Any, db: Any, queue: Any
) -> None:
    other = create_model(client, caller)["id"]
    sample_ids = {}
    with db.transaction() as session:
        for model_id in (trained, other):
            job = session.scalars(select(Job).where(Job.model_id == model_id)).one()
            sample_ids[model_id] = new_id("smp")
            session.add(
                Sample(id=sample_ids[model_id], owner_id=caller.owner_id, model_id=model_id, job_id=job.id,
                       key=sample_key(model_id, sample_ids[model_id]), width=40, height=30, size_bytes=1,
                       is_preview=True, created_at=utcnow())
            )  # fmt: skip
    queue.jobs.clear()
    mine = enlarge(client, caller, trained, factor=2.0, source={"sample_id": sample_ids[trained]})
    assert mine.status_code == 202 and mine.json()["params"]["sample_id"] == sample_ids[trained]
    foreign = enlarge(client, caller, trained, factor=2.0, source={"sample_id": sample_ids[other]})
    assert foreign.status_code == 404 and len(queue.jobs) == 1


def test_a_head_for_a_trained_model_and_its_replacement(
    client: Any, caller: Any, db: Any, queue: Any
) -> None:
    model_id = create_model(client, caller)["id"]
    pretend_trained(db, model_id, head=False)
    queue.jobs.clear()
    first = client.post(f"/v1/models/{model_id}/sr-head", headers=caller.headers, json={"factor": 2.0})
    assert first.status_code == 202 and first.json()["kind"] == "train_sr_head"
    assert first.json()["params"]["factor"] == 2.0 and queue.jobs == [(first.json()["id"], "train_sr_head")]
    pretend_trained(db, model_id)  # the head exists now: its job succeeded
    with db.transaction() as session:
        session.get_one(Job, first.json()["id"]).state = JobState.SUCCEEDED.value
    again = client.post(f"/v1/models/{model_id}/sr-head", headers=caller.headers, json={})
    assert again.status_code == 409 and "replace=true" in again.json()["detail"]
    replaced = client.post(f"/v1/models/{model_id}/sr-head", headers=caller.headers, json={"replace": True})
    assert replaced.status_code == 202


def test_harmonization_models_get_no_head(client: Any, caller: Any, db: Any) -> None:
    refused = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "mode": "harmonization", "sr_factor": "4"},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert refused.status_code == 422 and "super-resolution head" in refused.json()["detail"]
    model_id = create_model(client, caller, mode="harmonization")["id"]
    pretend_trained(db, model_id, head=False, mode="harmonization")
    later = client.post(f"/v1/models/{model_id}/sr-head", headers=caller.headers, json={})
    assert later.status_code == 422 and "generation, retarget, animation" in later.json()["detail"]


def test_sr_fields_on_model_creation(client: Any, caller: Any) -> None:
    body = create_model(client, caller, sr_factor="4", sr_iters="100")
    assert body["params"]["sr_factor"] == 4.0 and body["params"]["sr_iters"] == 100
    alone = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "sr_iters": "100"},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert alone.status_code == 422 and "sr_factor" in alone.json()["detail"]
