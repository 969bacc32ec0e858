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
