"""Limits: unfinished jobs per owner (429 + Retry-After), JSON body size, request ranges."""

from __future__ import annotations

from typing import Any

from tests.service_fixtures import scene_image

PNG = scene_image()


def _create(client: Any, caller: Any, **headers: str) -> Any:
    return client.post(
        "/v1/models",
        headers={**caller.headers, **headers},
        data={"preset": "quick"},
        files={"image": ("a.png", PNG, "image/png")},
    )


def test_too_many_unfinished_jobs_is_429_with_retry_after(make_client: Any, caller: Any, queue: Any) -> None:
    client = make_client(max_queued_jobs_per_owner=2, queue_full_retry_after_s=17)
    first = _create(client, caller, **{"Idempotency-Key": "k1"})
    assert first.status_code == 202 and _create(client, caller).status_code == 202
    refused = _create(client, caller)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "17"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://consingan.dev/problems/too-many-jobs"
    assert len(queue.jobs) == 2
    # A retry of an accepted request still gets its stored response, not the 429.
    replay = _create(client, caller, **{"Idempotency-Key": "k1"})
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]


def test_the_limit_is_per_owner(make_client: Any, make_caller: Any) -> None:
    client = make_client(max_queued_jobs_per_owner=1)
    a, b = make_caller(), make_caller()
    assert _create(client, a).status_code == 202 and _create(client, a).status_code == 429
    assert _create(client, b).status_code == 202


def test_json_bodies_have_a_small_limit_enforced_before_reading(make_client: Any, caller: Any) -> None:
    client = make_client(max_json_body_bytes=1000)
    body = '{"n": 1, "pad": "' + "x" * 5000 + '"}'
    response = client.post(
        "/v1/models/mdl_0193a1b2c3d4e5f60718293a4b5c/samples",
        headers={**caller.headers, "content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 413 and response.json()["type"].endswith("/payload-too-large")


def test_training_size_fields_are_bounded(client: Any, caller: Any, queue: Any) -> None:
    for field, value in [("train_stages", "13"), ("iters_per_stage", "20001"), ("max_size", "4096")]:
        response = client.post(
            "/v1/models",
            headers=caller.headers,
            data={field: value},
            files={"image": ("a.png", PNG, "image/png")},
        )
        assert response.status_code == 422, (field, response.text)
    assert queue.jobs == []
