"""End to end through a real Celery worker process: an MP4 animation of a tiny model, downloaded from S3 (moto)
through its presigned URL and decoded back with PyAV: H.264, yuv420p, every frame, the size the job reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from core.queue import CeleryQueue
from tests.e2e.helpers import post_and_wait, train_tiny
from tests.video import decode

pytestmark = pytest.mark.e2e


def test_an_mp4_animation_through_a_real_worker_decodes_back(
    celery_worker: Path,
    make_client: Any,
    settings: Any,
    redis_url: str,
    caller: Any,
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    model = train_tiny(client, caller, celery_worker, mode="animation", seed="4")
    body = {"frames": 11, "fps": 8, "seed": 2, "format": "mp4"}
    job = post_and_wait(client, caller, f"/v1/models/{model['id']}/animations", body, celery_worker)
    result = job["result"]
    assert result["frames"] == 11
    assert [(f["name"], f["media_type"]) for f in result["files"]] == [("animation.mp4", "video/mp4")]
    download = httpx.get(result["url"])  # presigned
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"

    video = decode(download.content)
    assert video.codec == "h264" and video.pix_fmt == "yuv420p"
    assert len(video.frames) == 11 and video.average_rate == 8
    # the job reports the file's frame size: the model's, each side rounded up to even
    assert (video.width, video.height) == (result["width"], result["height"])
    assert video.frames[0].shape == (result["height"], result["width"], 3)
    assert (result["width"], result["height"]) == (32, 28)  # the 48 x 40 scene at max_size 32 is 32 x 27
