"""Both storage backends behave alike; keys are built from ids only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from core.ids import new_id
from core.storage import (
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    check_key,
    input_key,
    model_prefix,
    sample_key,
    stage_key,
)


@pytest.fixture(params=["local", "s3"])
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    return request.getfixturevalue("storage")


def test_put_get_delete_prefix(any_storage: Any) -> None:
    model_id = new_id("mdl")
    any_storage.put(input_key(model_id), b"png-bytes", "image/png")
    any_storage.put(stage_key(model_id, 0), b"stage", "application/octet-stream")
    assert any_storage.get(input_key(model_id)) == b"png-bytes"
    assert b"".join(any_storage.iter_chunks(input_key(model_id))) == b"png-bytes"
    assert any_storage.exists(stage_key(model_id, 0))
    assert any_storage.delete_prefix(model_prefix(model_id)) == 2
    assert not any_storage.exists(input_key(model_id))
    with pytest.raises(ObjectNotFound):
        any_storage.get(input_key(model_id))
    any_storage.check()


def test_presigned_url_downloads_from_s3(storage: Any) -> None:
    model_id, sample_id = new_id("mdl"), new_id("smp")
    storage.put(sample_key(model_id, sample_id), b"\x89PNG...", "image/png")
    url = storage.presigned_url(sample_key(model_id, sample_id))
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"\x89PNG..."


def test_presigned_urls_point_at_the_public_endpoint_when_one_is_set(storage: Any, settings: Any) -> None:
    """compose: the service reaches MinIO as http://minio:9000, browsers as http://localhost:9000."""
    port = settings.s3_endpoint_url.rsplit(":", 1)[1]
    public = S3Storage(settings.model_copy(update={"s3_public_endpoint_url": f"http://localhost:{port}"}))
    model_id, sample_id = new_id("mdl"), new_id("smp")
    public.put(sample_key(model_id, sample_id), b"\x89PNG...", "image/png")  # through the service's address
    url = public.presigned_url(sample_key(model_id, sample_id))
    assert url is not None and url.startswith(f"http://localhost:{port}/")
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"\x89PNG..."


def test_local_storage_has_no_presigned_urls(tmp_path: Path) -> None:
    assert LocalStorage(tmp_path).presigned_url(input_key(new_id("mdl"))) is None


@pytest.mark.parametrize(
    "bad",
    ["../etc/passwd", "models/../../x", "models/mdl_x/input.png", "/abs/path", "models/Mdl_" + "0" * 28],
)
def test_keys_from_user_text_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        check_key(bad)


def test_key_builders_refuse_non_ids() -> None:
    with pytest.raises(ValueError):
        input_key("../../secret")
    with pytest.raises(ValueError):
        sample_key(new_id("mdl"), "x/../y")
