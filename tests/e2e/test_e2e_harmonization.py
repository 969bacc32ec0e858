"""End to end through a real Celery worker process: train a harmonization model, harmonize with fine-tuning,
download and decode the result and the fine-tuned checkpoint, and receive the signed `job.succeeded` webhook."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from standardwebhooks.webhooks import Webhook

import engine
from core.queue import CeleryQueue
from tests.e2e.helpers import wait_for
from tests.service_fixtures import scene_image

pytestmark = pytest.mark.e2e


def mask_png(size: tuple[int, int]) -> bytes:
    image = Image.new("L", size, 0)
    image.paste(255, (size[0] // 3, size[1] // 3, size[0] * 2 // 3, size[1] * 2 // 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_train_harmonize_fine_tune_download_and_webhook(
    celery_worker: Path,
    make_client: Any,
    settings: Any,
    redis_url: str,
    caller: Any,
    receiver: Any,
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    created = client.post(
        "/v1/models",
        headers=caller.headers,
        data={
            "preset": "quick", "mode": "harmonization", "train_stages": "2", "iters_per_stage": "4",
            "max_size": "32", "min_size": "16", "seed": "3",
            "webhook_url": receiver.url, "webhook_events": "job.succeeded,job.failed",
        },
        files={"image": ("scene.png", scene_image(48, 40), "image/png")},
    )  # fmt: skip
    assert created.status_code == 202, created.text
    model = wait_for(client, created.headers["location"], caller.headers, celery_worker, timeout_s=120)
    assert model["state"] == "succeeded", f"{model['error']}\n{celery_worker.read_text()[-5000:]}"
    assert model["train_config"]["mode"] == "harmonization"

    naive_size = (56, 44)
    response = client.post(
        f"/v1/models/{model['id']}/harmonizations",
        headers={**caller.headers, "Prefer": "wait=60"},
        data={"stage": "1", "fine_tune": "true", "fine_tune_iters": "3", "seed": "8"},
        files={
            "naive": ("naive.png", scene_image(*naive_size), "image/png"),
            "mask": ("mask.png", mask_png(naive_size), "image/png"),
        },
    )
    assert response.status_code == 200, f"{response.text}\n{celery_worker.read_text()[-5000:]}"
    job = response.json()
    assert job["kind"] == "harmonize" and job["state"] == "succeeded", job["error"]

    png = httpx.get(job["result"]["url"]).content  # presigned S3 URL, no API key needed
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.format == "PNG" and image.mode == "RGB" and image.size == naive_size
    tuned = engine.checkpoint.from_bytes(httpx.get(job["result"]["checkpoint_url"]).content)
    assert tuned.is_complete and tuned.config.mode == "harmonization"

    (hit,) = receiver.wait(1, timeout_s=60)
    payload = Webhook(caller.webhook_secret).verify(hit.body, hit.headers)
    assert payload["type"] == "job.succeeded" and payload["data"]["job_id"] == job["id"]
    assert payload["data"]["kind"] == "harmonize"
    events = client.get(f"/v1/jobs/{job['id']}/events", headers=caller.headers).json()["data"]
    types = [e["type"] for e in events]
    assert types[:2] == ["queued", "started"] and types[-1] == "succeeded"
