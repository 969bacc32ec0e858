"""The SR head after the model, through a real Celery worker process: a model created with `sr_factor` is
`succeeded` (previews, signed `model.succeeded` webhook) before its head, whose `train_sr_head` job the
worker created when the training ended and then ran from the queue; a cancel keeps the stages trained so far."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from core.queue import CeleryQueue
from tests.e2e.helpers import train_tiny, wait_for
from tests.service_fixtures import scene_image

pytestmark = pytest.mark.e2e


def test_the_model_succeeds_then_its_head_trains_as_a_job_of_its_own(
    celery_worker: Path,
    make_client: Any,
    settings: Any,
    redis_url: str,
    caller: Any,
    receiver: Any,
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    model = train_tiny(
        client, caller, celery_worker, seed="8", sr_factor="2", sr_iters="60",
        webhook_url=receiver.url, webhook_events="model.succeeded,job.succeeded",
    )  # fmt: skip
    head = model["sr_head_training"]
    assert head is not None and head["factor"] == 2.0
    (first,) = receiver.wait(1)
    assert json.loads(first.body)["type"] == "model.succeeded"
    samples = client.get(f"/v1/models/{model['id']}/samples", headers=caller.headers).json()["data"]
    assert samples and all(s["is_preview"] for s in samples)

    done = wait_for(client, f"/v1/jobs/{head['job_id']}", caller.headers, celery_worker)
    assert done["state"] == "succeeded" and done["kind"] == "train_sr_head", done["error"]
    # ready before its head: the model's training job had finished when the head's job started
    training = client.get(f"/v1/jobs/{model['train_job_id']}", headers=caller.headers).json()
    finished, started = training["finished_at"], done["started_at"]  # `done` is GET /v1/jobs/{head's id}
    assert finished is not None and started is not None, (training, done)
    assert dt.datetime.fromisoformat(finished) <= dt.datetime.fromisoformat(started), (finished, started)
    assert done["progress"]["iters_per_stage"] == 60 and done["progress"]["percent"] == pytest.approx(100.0)
    events = client.get(f"/v1/jobs/{head['job_id']}/events", headers=caller.headers).json()["data"]
    assert [e["type"] for e in events][:2] == ["queued", "started"]
    assert any(e["type"] == "progress" for e in events)
    model = client.get(f"/v1/models/{model['id']}", headers=caller.headers).json()
    assert model["sr_head"]["sr_train"] == 2.0 and model["sr_head"]["iterations"] == 60
    assert model["sr_head_training"]["state"] == "succeeded"
    job_hook = receiver.wait(2)[1]  # job.succeeded of the head, after model.succeeded
    assert json.loads(job_hook.body)["type"] == "job.succeeded"


def test_cancel_keeping_the_trained_stages_through_the_worker(
    celery_worker: Path,
    make_client: Any,
    settings: Any,
    redis_url: str,
    caller: Any,
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    created = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "train_stages": "3", "iters_per_stage": "300", "max_size": "32"},
        files={"image": ("scene.png", scene_image(48, 40), "image/png")},
    )
    assert created.status_code == 202, created.text
    path = created.headers["location"]
    deadline = time.monotonic() + 240
    while (model := client.get(path, headers=caller.headers).json())["stages_trained"] in (None, 0):
        assert model["state"] in ("queued", "running") and time.monotonic() < deadline, model
        time.sleep(0.3)
    canceled = client.post(f"{path}/cancel", headers=caller.headers, json={"keep_trained_stages": True})
    assert canceled.status_code == 200, canceled.text
    model = wait_for(client, path, caller.headers, celery_worker)
    assert model["state"] == "succeeded", model["error"]
    assert model["stages_planned"] == 3 and 1 <= model["stages_trained"] < 3
    drawn = client.post(f"{path}/samples", headers={**caller.headers, "Prefer": "wait=60"}, json={"n": 1})
    assert drawn.status_code in (200, 202), drawn.text
    sample = wait_for(client, drawn.headers["location"], caller.headers, celery_worker)
    assert sample["state"] == "succeeded", sample["error"]
