"""`format=mp4` animations at the HTTP edge: accepted and queued, listed in the vocabulary, and the finished
job's file downloads as video/mp4 (streamed from local storage, and through S3 with its stored content type)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from core.models import Job, JobState
from core.storage import LocalStorage, job_output_key
from tests.api.test_api_animations import animate, trained_model

# The first bytes of an MP4 (an ftyp box): the API stores and serves bytes, it never decodes a video.
MP4_BYTES = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 64


def succeed_with_file(db: Any, job_id: str, storage: Any, model_id: str, name: str, data: bytes) -> None:
    """As the worker leaves a finished animate job: its file under attempt 1, listed in jobs.result."""
    storage.put(job_output_key(model_id, job_id, 1, name), data, "video/mp4")
    with db.transaction() as session:
        job = session.get_one(Job, job_id)
        job.state = JobState.SUCCEEDED.value
        job.result = {"attempt": 1, "files": [name], "frames": 60, "width": 250, "height": 188}


def test_mp4_is_an_animation_format_of_the_vocabulary(client: Any, caller: Any) -> None:
    vocabulary = client.get("/v1/vocabulary", headers=caller.headers).json()
    assert "mp4" in vocabulary["animation_formats"]


def test_an_mp4_animation_is_queued_with_its_format(client: Any, caller: Any, db: Any, queue: Any) -> None:
    model_id = trained_model(client, caller, db)
    queue.jobs.clear()
    response = animate(client, caller, model_id, frames=60, fps=12, format="mp4", seed=2)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["format"] == "mp4"
    assert queue.jobs == [(response.json()["id"], "animate")]


def test_the_finished_mp4_downloads_as_video_mp4_from_local_storage(
    make_client: Any, caller: Any, make_caller: Any, db: Any, tmp_path: Path
) -> None:
    local = LocalStorage(tmp_path / "objects")
    client = make_client(storage=local)
    model_id = trained_model(client, caller, db)
    job_id = animate(client, caller, model_id, frames=60, format="mp4").json()["id"]
    succeed_with_file(db, job_id, local, model_id, "animation.mp4", MP4_BYTES)
    result = client.get(f"/v1/jobs/{job_id}", headers=caller.headers).json()["result"]
    assert [(f["name"], f["media_type"]) for f in result["files"]] == [("animation.mp4", "video/mp4")]
    assert result["url"] == f"http://testserver/v1/jobs/{job_id}/files/animation.mp4"
    download = client.get(result["url"], headers=caller.headers)
    assert download.status_code == 200 and download.content == MP4_BYTES
    assert download.headers["content-type"] == "video/mp4"
    assert f"{job_id}-animation.mp4" in download.headers["content-disposition"]
    assert client.get(result["url"], headers=make_caller().headers).status_code == 404


def test_the_finished_mp4_is_served_from_s3_as_video_mp4(
    client: Any, caller: Any, db: Any, storage: Any
) -> None:
    model_id = trained_model(client, caller, db)
    job_id = animate(client, caller, model_id, frames=60, format="mp4").json()["id"]
    succeed_with_file(db, job_id, storage, model_id, "animation.mp4", MP4_BYTES)
    result = client.get(f"/v1/jobs/{job_id}", headers=caller.headers).json()["result"]
    presigned = httpx.get(result["url"])  # S3: result.url is presigned
    assert presigned.status_code == 200 and presigned.content == MP4_BYTES
    assert presigned.headers["content-type"] == "video/mp4"
