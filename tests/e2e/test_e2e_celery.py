"""End to end through a real Celery worker process: upload, train, sample, download, signed webhook."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from standardwebhooks.webhooks import Webhook

from core.queue import CeleryQueue
from tests.e2e.helpers import METRICS_PORT, post_and_wait, train_tiny, wait_for
from tests.service_fixtures import scene_image

pytestmark = pytest.mark.e2e


def test_upload_train_sample_download_and_signed_webhook(
    celery_worker: Path, make_client: Any, settings: Any, redis_url: str, caller: Any, receiver: Any
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    created = client.post(
        "/v1/models",
        headers=caller.headers,
        data={
            "preset": "quick", "train_stages": "2", "iters_per_stage": "10", "max_size": "32", "seed": "11",
            "webhook_url": receiver.url, "webhook_events": "model.succeeded,model.failed",
        },
        files={"image": ("scene.png", scene_image(48, 40), "image/png")},
    )  # fmt: skip
    assert created.status_code == 202, created.text
    model = wait_for(client, created.headers["location"], caller.headers, celery_worker)
    assert model["state"] == "succeeded", f"{model['error']}\n{celery_worker.read_text()[-5000:]}"
    assert model["progress"]["percent"] == pytest.approx(100.0, abs=0.5)

    samples = client.get(f"/v1/models/{model['id']}/samples", headers=caller.headers).json()["data"]
    assert len(samples) == 8 and all(s["is_preview"] for s in samples)
    png = httpx.get(samples[0]["url"]).content  # presigned S3 URL, no API key needed
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.mode == "RGB" and image.size == (samples[0]["width"], samples[0]["height"])

    (hit,) = receiver.wait(1, timeout_s=60)
    payload = Webhook(caller.webhook_secret).verify(hit.body, hit.headers)  # the independent implementation
    assert payload["type"] == "model.succeeded" and payload["data"]["model_id"] == model["id"]

    drawn = client.post(
        f"/v1/models/{model['id']}/samples",
        headers={**caller.headers, "Prefer": "wait=60"},
        json={"n": 2, "scale_w": 1.5},
    )
    assert drawn.status_code == 200, drawn.text  # the worker's next fresh child process ran it
    assert drawn.json()["state"] == "succeeded" and len(drawn.json()["samples"]) == 2
    events = client.get(f"/v1/jobs/{model['train_job_id']}/events", headers=caller.headers).json()["data"]
    assert [e["type"] for e in events][:2] == ["queued", "started"] and events[-1]["type"] == "succeeded"


def test_cancel_reaches_a_running_celery_job_within_seconds(
    celery_worker: Path, make_client: Any, settings: Any, redis_url: str, caller: Any
) -> None:
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    created = client.post(
        "/v1/models",
        headers=caller.headers,
        data={
            "preset": "quick",
            "train_stages": "2",
            "iters_per_stage": "5000",
            "max_size": "32",
            "min_size": "16",
        },
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert created.status_code == 202, created.text
    location = created.headers["location"]
    deadline = time.monotonic() + 90
    while client.get(location, headers=caller.headers).json()["state"] != "running":
        assert time.monotonic() < deadline, celery_worker.read_text()[-3000:]
        time.sleep(0.2)
    canceled_at = time.monotonic()
    response = client.post(f"{location}/cancel", headers=caller.headers)
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    model = wait_for(client, location, caller.headers, celery_worker, timeout_s=30)
    assert model["state"] == "canceled" and time.monotonic() - canceled_at < 15


def test_worker_serves_job_metrics_from_its_pool_processes(celery_worker: Path) -> None:
    """After the jobs above (each in its own pool process), the main process serves their sum."""
    text = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).text
    assert 'consingan_worker_job_duration_seconds_count{kind="train",state="succeeded"}' in text, text[-3000:]
    assert 'consingan_worker_job_queue_wait_seconds_count{kind="sample"}' in text
    assert 'consingan_worker_jobs_total{kind="train",state="canceled"} 1.0' in text


def test_animation_and_checkpoint_download_through_a_real_worker(
    celery_worker: Path, make_client: Any, settings: Any, redis_url: str, caller: Any, tmp_path: Path
) -> None:
    """An animation-mode model: the animate job's GIF has the frames asked for; the checkpoint downloads
    and `python -m engine sample` draws from it offline."""
    import engine
    from engine.cli import main as engine_cli

    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    model = train_tiny(client, caller, celery_worker, mode="animation", seed="3")
    body = {"frames": 7, "fps": 5, "seed": 1}
    job = post_and_wait(client, caller, f"/v1/models/{model['id']}/animations", body, celery_worker)
    assert job["kind"] == "animate"
    result = job["result"]
    assert result["frames"] == 7 and [f["name"] for f in result["files"]] == ["animation.gif"]
    gif = httpx.get(result["url"]).content  # presigned
    with Image.open(io.BytesIO(gif)) as image:
        assert image.format == "GIF" and image.n_frames == 7
        assert image.size == (result["width"], result["height"])

    redirect = client.get(
        f"/v1/models/{model['id']}/checkpoint", headers=caller.headers, follow_redirects=False
    )
    assert redirect.status_code == 307
    model_dir = tmp_path / "offline"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(httpx.get(redirect.headers["location"]).content)
    assert engine_cli(["--device", "cpu", "sample", str(model_dir), "-n", "3", "--seed", "2"]) == 0
    drawn = sorted((model_dir / "samples").glob("0*.png"))
    offline = engine.checkpoint.from_bytes((model_dir / "model.safetensors").read_bytes())
    height, width = offline.stage_shapes[-1]
    assert len(drawn) == 3 and offline.config.mode == "animation"
    with Image.open(drawn[0]) as sample:
        assert sample.size == (width, height)


def test_super_resolution_through_a_real_worker(
    celery_worker: Path, make_client: Any, settings: Any, redis_url: str, caller: Any
) -> None:
    """A model created with sr_factor (its head trained by a job of its own after it), then enlarged x2 and
    downloaded."""
    client = make_client(queue=CeleryQueue(settings.model_copy(update={"broker_url": redis_url})))
    model = train_tiny(client, caller, celery_worker, seed="6", sr_factor="2", sr_iters="5")
    head = wait_for(client, f"/v1/jobs/{model['sr_head_training']['job_id']}", caller.headers, celery_worker)
    assert head["state"] == "succeeded", head["error"]
    model = client.get(f"/v1/models/{model['id']}", headers=caller.headers).json()
    assert model["sr_head"]["sr_train"] == 2.0 and model["progress"]["num_stages"] == 2

    body = {"factor": 2, "n": 2, "seed": 4}
    job = post_and_wait(client, caller, f"/v1/models/{model['id']}/super-resolutions", body, celery_worker)
    assert job["kind"] == "super_resolve"
    result = job["result"]
    assert (result["input_width"], result["input_height"]) == (32, 27) and result["passes"] == 3
    assert [f["name"] for f in result["files"]] == ["super_resolution_0.png", "super_resolution_1.png"]
    for file in result["files"]:
        with Image.open(io.BytesIO(httpx.get(file["url"]).content)) as image:  # presigned
            image.load()
            assert image.format == "PNG" and image.size == (64, 54) == (result["width"], result["height"])
