"""POST /v1/models/{id}/animations: bounds checked at the door (frames x pixels), a queued animate job."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core import vocabulary
from core.models import Job, JobState, Model
from core.storage import checkpoint_key
from tests.service_fixtures import scene_image

PROBLEM = "https://consingan.dev/problems/"


def trained_model(client: Any, caller: Any, db: Any, width: int = 48, height: int = 40, **cfg: Any) -> str:
    created = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "mode": "animation"},
        files={"image": ("scene.png", scene_image(width, height), "image/png")},
    )
    assert created.status_code == 202, created.text
    model_id: str = created.json()["id"]
    with db.transaction() as session:  # as the worker leaves a finished training
        model = session.get_one(Model, model_id)
        session.scalars(select(Job).where(Job.model_id == model_id)).one().state = JobState.SUCCEEDED.value
        model.checkpoint_key = checkpoint_key(model_id)
        model.train_config = {"mode": "animation", "train_stages": 4, "max_size": 64, "min_size": 20, **cfg}
    return model_id


def animate(client: Any, caller: Any, model_id: str, **body: Any) -> Any:
    return client.post(f"/v1/models/{model_id}/animations", headers=caller.headers, json=body)


def test_animate_job_is_queued_with_its_parameters(client: Any, caller: Any, db: Any, queue: Any) -> None:
    model_id = trained_model(client, caller, db)
    queue.jobs.clear()
    response = animate(client, caller, model_id, frames=12, fps=8, format="webp", seed=5)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "animate" and job["state"] == "queued" and job["result"] is None
    assert job["params"] == {
        "frames": 12, "fps": 8.0, "alpha": 0.1, "beta": 0.9, "start_stage": 0, "format": "webp", "seed": 5,
    }  # fmt: skip
    assert queue.jobs == [(job["id"], "animate")]


def test_frames_times_pixels_is_capped_with_the_allowed_count(
    client: Any, caller: Any, db: Any, queue: Any
) -> None:
    # a 1024 x 1024 model: 38 frames fit under the cap, 39 do not
    model_id = trained_model(client, caller, db, 1024, 1024, max_size=1024)
    queue.jobs.clear()
    allowed = vocabulary.ANIMATION_MAX_FRAME_PIXELS // (1024 * 1024)
    refused = animate(client, caller, model_id, frames=allowed + 1)
    assert refused.status_code == 422 and refused.json()["type"] == PROBLEM + "validation"
    assert f"up to {allowed} frames" in refused.json()["detail"]
    assert refused.json()["errors"][0]["loc"] == ["body", "frames"] and queue.jobs == []
    assert animate(client, caller, model_id, frames=allowed).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"frames": 1}, "frames"),
        ({"frames": vocabulary.ANIMATION_FRAMES_RANGE[1] + 1}, "frames"),
        ({"fps": 0}, "fps"),
        ({"alpha": 1.5}, "alpha"),
        ({"format": "mov"}, "format"),
        ({"start_stage": 4}, "start_stage"),  # the model has 4 stages
        ({"framez": 3}, "framez"),
    ],
)
def test_bad_parameters_are_422_and_queue_nothing(
    body: dict[str, Any], field: str, client: Any, caller: Any, db: Any, queue: Any
) -> None:
    model_id = trained_model(client, caller, db)
    queue.jobs.clear()
    response = animate(client, caller, model_id, **body)
    assert response.status_code == 422, response.text
    assert field in response.text and queue.jobs == []


def test_untrained_model_is_409(client: Any, caller: Any, queue: Any) -> None:
    created = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick"},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    response = animate(client, caller, created.json()["id"], frames=5)
    assert response.status_code == 409 and response.json()["type"] == PROBLEM + "conflict"
