"""Every bad upload gets a 4xx problem, and leaves no row and no object behind."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.models import Model
from tests.service_fixtures import object_keys, png_header_only, scene_image

PNG = scene_image()


def _model_count(db: Any, owner_id: str) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).where(Model.owner_id == owner_id)) or 0)


CASES = {
    "not-an-image": (
        {"files": {"image": ("a.png", b"<html>hello</html>", "image/png")}},
        422,
        "invalid-image",
    ),
    "truncated-png": (
        {"files": {"image": ("a.png", PNG[: len(PNG) // 2], "image/png")}},
        422,
        "invalid-image",
    ),
    "20000x20000-header": (
        {"files": {"image": ("a.png", png_header_only(20000, 20000), "image/png")}},
        422,
        "invalid-image",
    ),
    "zero-bytes": ({"files": {"image": ("a.png", b"", "image/png")}}, 422, "invalid-image"),
    "gif": (
        {"files": {"image": ("a.gif", scene_image(fmt="GIF"), "image/gif")}},
        415,
        "unsupported-media-type",
    ),
    "declared-text": ({"files": {"image": ("a.txt", PNG, "text/plain")}}, 415, "unsupported-media-type"),
    "json-body": ({"json": {"preset": "quick"}}, 415, "unsupported-media-type"),
    "no-image-field": (
        {"data": {"preset": "quick"}, "files": {"other": ("a.png", PNG, "image/png")}},
        422,
        "validation",
    ),
    "path-like-filename": (
        {"files": {"image": ("../../etc/passwd", b"root:x:0:0", "application/octet-stream")}},
        422,
        "invalid-image",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_upload(case: str, client: Any, caller: Any, db: Any, storage: Any, queue: Any) -> None:
    kwargs, status, slug = CASES[case]
    before = set(object_keys(storage, "models/"))
    response = client.post("/v1/models", headers=caller.headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"https://consingan.dev/problems/{slug}" and problem["status"] == status
    assert problem["detail"]
    assert _model_count(db, caller.owner_id) == 0
    assert set(object_keys(storage, "models/")) == before
    assert queue.jobs == []


def test_too_large_file_is_413_before_storage(make_client: Any, caller: Any, db: Any, storage: Any) -> None:
    client = make_client(max_upload_bytes=len(PNG) - 1)
    before = set(object_keys(storage, "models/"))
    response = client.post("/v1/models", headers=caller.headers, files={"image": ("a.png", PNG, "image/png")})
    assert response.status_code == 413 and response.json()["type"].endswith("/payload-too-large")
    assert _model_count(db, caller.owner_id) == 0 and set(object_keys(storage, "models/")) == before


def test_body_far_over_the_limit_is_refused_by_content_length(make_client: Any, caller: Any) -> None:
    client = make_client(max_upload_bytes=1000)
    big = b"\0" * 200_000
    response = client.post("/v1/models", headers=caller.headers, files={"image": ("a.png", big, "image/png")})
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"


def test_chunked_body_over_the_limit_is_cut_off(make_client: Any, caller: Any) -> None:
    client = make_client(max_upload_bytes=1000)

    def chunks() -> Any:
        for _ in range(50):
            yield b"x" * 10_000

    headers = {**caller.headers, "content-type": "multipart/form-data; boundary=b"}
    response = client.post("/v1/models", headers=headers, content=chunks())
    assert response.status_code == 413 and response.json()["type"].endswith("/payload-too-large")


def test_storage_failure_leaves_no_row(make_client: Any, caller: Any, db: Any, storage: Any) -> None:
    class BrokenStorage:
        def __getattr__(self, name: str) -> Any:
            return getattr(storage, name)

        def put(self, *args: Any) -> None:
            raise OSError("disk full")

    client = make_client(storage=BrokenStorage())
    response = client.post("/v1/models", headers=caller.headers, files={"image": ("a.png", PNG, "image/png")})
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    assert _model_count(db, caller.owner_id) == 0


NEVER_TRAINS = {
    # (width, height, form fields, words the detail must contain)
    "16x4000": (16, 4000, {}, "closer to square"),
    "4000x16": (4000, 16, {}, "closer to square"),
    "below-the-coarsest-stage": (20, 20, {}, "larger image"),
    "panorama-quick": (1000, 300, {"preset": "quick"}, "at max_size=64 it trains at 64x20"),
    "harmonization-quick-too-small": (30, 30, {"preset": "quick", "mode": "harmonization"}, "min_size=32"),
}


@pytest.mark.parametrize("case", list(NEVER_TRAINS))
def test_image_that_can_never_train_is_422_with_the_reason(
    case: str, client: Any, caller: Any, db: Any, storage: Any, queue: Any
) -> None:
    """The engine's own pyramid rule for the requested preset/mode/sizes, applied at upload."""
    width, height, fields, reason = NEVER_TRAINS[case]
    before = set(object_keys(storage, "models/"))
    response = client.post(
        "/v1/models",
        headers=caller.headers,
        data=fields,
        files={"image": ("a.png", scene_image(width, height), "image/png")},
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "https://consingan.dev/problems/invalid-image"
    assert reason in problem["detail"] and f"the image is {width}x{height}" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "image"]
    assert _model_count(db, caller.owner_id) == 0
    assert set(object_keys(storage, "models/")) == before and queue.jobs == []


def test_the_same_image_trains_where_its_config_allows(client: Any, caller: Any) -> None:
    files = {"image": ("a.png", scene_image(1000, 300), "image/png")}
    response = client.post("/v1/models", headers=caller.headers, files=files, data={"preset": "paper"})
    assert response.status_code == 202, response.text  # 250x75 at paper's max_size: above min_size 25


def test_config_the_engine_rejects_is_422(client: Any, caller: Any, db: Any, queue: Any) -> None:
    # min_size 100 with quick's max_size 64: each field is in range, together the engine refuses them
    response = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", "min_size": "100"},
        files={"image": ("a.png", PNG, "image/png")},
    )
    assert response.status_code == 422, response.text
    assert "min_size" in response.json()["detail"] and "ValueError" not in response.json()["detail"]
    assert _model_count(db, caller.owner_id) == 0 and queue.jobs == []


def test_at_most_max_concurrent_decodes_run_at_once(
    make_client: Any, caller: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from api import uploads

    running, most = 0, 0
    lock = threading.Lock()
    real = uploads.validate_image

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.3)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(uploads, "validate_image", counting)
    client = make_client(max_concurrent_decodes=2)
    statuses: list[int] = []

    def upload() -> None:
        files = {"image": ("a.png", PNG, "image/png")}
        statuses.append(client.post("/v1/models", headers=caller.headers, files=files).status_code)

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [202] * 6 and most == 2
