"""The live OpenAPI document, as `GET /openapi.json` serves it from an app built by the factory (no database
is touched: the document comes from the routes alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def live_document(folder: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import get_settings

    settings = get_settings(
        database_url=f"sqlite:///{folder / 'contract.db'}",
        storage_backend="local",
        storage_dir=folder / "objects",
        queue_mode="embedded",
        log_format="text",
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="session")
def openapi_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return live_document(tmp_path_factory.mktemp("openapi"))
