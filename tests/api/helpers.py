"""Helpers the API test modules share."""

from __future__ import annotations

from typing import Any

from tests.service_fixtures import scene_image


def create_model(client: Any, caller: Any, **fields: Any) -> dict[str, Any]:
    """POST /v1/models with the 48 x 40 scene and the quick preset (`fields` add to or replace it): the 202's
    body."""
    response = client.post(
        "/v1/models",
        headers=caller.headers,
        data={"preset": "quick", **fields},
        files={"image": ("scene.png", scene_image(), "image/png")},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body
