"""Idempotency-Key: same key and request -> the same response; a different request -> 422 problem."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.models import Model
from tests.service_fixtures import scene_image


def post(client: Any, caller: Any, key: str, image: bytes, **fields: Any) -> Any:
    return client.post(
        "/v1/models",
        headers={**caller.headers, "Idempotency-Key": key},
        data={"preset": "quick", **fields},
        files={"image": ("scene.png", image, "image/png")},
    )


def test_replay_returns_the_same_resource_once(client: Any, caller: Any, db: Any, queue: Any) -> None:
    first = post(client, caller, "k-1", scene_image(), seed=3)
    second = post(client, caller, "k-1", scene_image(), seed=3)
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json() and second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert len(queue.jobs) == 1
    with db.sessions() as session:
        assert session.scalar(select(func.count()).where(Model.owner_id == caller.owner_id)) == 1


def test_same_key_different_request_is_a_conflict(client: Any, caller: Any) -> None:
    assert post(client, caller, "k-2", scene_image(), seed=3).status_code == 202
    for changed in (
        post(client, caller, "k-2", scene_image(), seed=4),
        post(client, caller, "k-2", scene_image(64, 40), seed=3),
    ):
        assert changed.status_code == 422
        assert changed.json()["type"] == "https://consingan.dev/problems/idempotency-conflict"


def test_keys_are_scoped_per_owner(client: Any, caller: Any, make_caller: Any) -> None:
    other = make_caller()
    mine = post(client, caller, "shared", scene_image()).json()
    theirs = post(client, other, "shared", scene_image()).json()
    assert mine["id"] != theirs["id"]
