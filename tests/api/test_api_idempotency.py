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
    with db.read() as session:
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


def test_concurrent_twin_request_gets_the_winners_response(
    client: Any, caller: Any, db: Any, storage: Any, queue: Any, monkeypatch: Any
) -> None:
    """The twin that loses the race on (owner, key) rolls back, removes its stored image, and replays."""
    from core import idempotency, submit
    from tests.service_fixtures import object_keys

    image = scene_image()
    real_claim = submit.claim_queue_room
    before = set(object_keys(storage, "models/"))
    fingerprints: list[str] = []
    real_fingerprint = submit.fingerprint
    monkeypatch.setattr(
        submit,
        "fingerprint",
        lambda request: fingerprints.append(real_fingerprint(request)) or fingerprints[-1],
    )

    def claim_while_a_twin_commits(*args: Any, **kwargs: Any) -> Any:
        with db.transaction() as twin:  # the twin commits between this request's replay check and its commit
            idempotency.remember(
                twin, caller.owner_id, "race", fingerprints[-1], 202, {"id": "mdl_winner"}, "/v1/models/w"
            )
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(submit, "claim_queue_room", claim_while_a_twin_commits)
    response = post(client, caller, "race", image)
    assert response.status_code == 202 and response.json() == {"id": "mdl_winner"}
    assert response.headers["idempotent-replayed"] == "true"
    assert queue.jobs == [] and set(object_keys(storage, "models/")) == before
    with db.read() as session:
        assert session.scalar(select(func.count()).where(Model.owner_id == caller.owner_id)) == 0
