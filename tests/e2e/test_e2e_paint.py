"""End to end through a real Celery worker process: train a tiny generation model, paint with quantization
(Prefer: wait, then an Idempotency-Key replay), download and decode every image, and see a harmonization
model refused."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from core.queue import CeleryQueue
from tests.e2e.helpers import train_tiny
from tests.service_fixtures import scene_image

pytestmark = pytest.mark.e2e


def test_train_paint_download_and_replay(
    celery_worker: Path,
    make_client: Any,
    settings: Any,
    redis_url: str,
    caller: Any,
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    model = train_tiny(client, caller, celery_worker, train_stages="3", seed="2")
    assert model["train_config"]["mode"] == "generation"
    painting = scene_image(96, 80)  # twice the training image's size, mirrored below
    with Image.open(io.BytesIO(painting)) as picture:
        out = io.BytesIO()
        picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(out, format="PNG")
    headers = {**caller.headers, "Prefer": "wait=60", "Idempotency-Key": "paint-e2e"}
    fields = {"stage": "2", "quantize": "true", "n": "2", "seed": "8"}
    files = {"painting": ("painting.png", out.getvalue(), "image/png")}
    url = f"/v1/models/{model['id']}/paintings"
    response = client.post(url, headers=headers, data=fields, files=files)
    assert response.status_code == 200, f"{response.text}\n{celery_worker.read_text()[-5000:]}"
    job = response.json()
    assert job["kind"] == "paint" and job["state"] == "succeeded", job["error"]
    result = job["result"]
    assert [f["name"] for f in result["files"]] == ["paint_0.png", "paint_1.png"] and result["stage"] == 2
    decoded = []
    for file in result["files"]:
        png = httpx.get(file["url"]).content  # presigned S3 URL, no API key needed
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            assert image.format == "PNG" and image.size == (result["width"], result["height"])
            decoded.append(image.tobytes())
    assert max(result["width"], result["height"]) == 32 and decoded[0] != decoded[1]

    again = client.post(url, headers=headers, data=fields, files=files)
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == job["id"]

    harmonizer = train_tiny(client, caller, celery_worker, mode="harmonization", min_size="16", seed="4")
    refused = client.post(
        f"/v1/models/{harmonizer['id']}/paintings", headers=caller.headers, files=files, data={"stage": "1"}
    )
    assert refused.status_code == 422 and "harmonization model cannot" in refused.json()["detail"]
