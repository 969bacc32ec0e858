"""`queue_position` on queued jobs and models, in the lane's fair-share order (core.fair_share), the priority
each task message carries, and the embedded worker claiming in that same order."""

from __future__ import annotations

from typing import Any

from core import jobs
from tests.service_fixtures import TINY_TRAINING, cancel_leftover_jobs, scene_image


def test_queue_position_follows_the_fair_share_order(
    client: Any, queue: Any, make_caller: Any, db: Any
) -> None:
    cancel_leftover_jobs(db)  # other tests' queued jobs would stand in this lane too
    a, b = make_caller(), make_caller()
    fields = {name: str(value) for name, value in TINY_TRAINING.items()}

    def train(caller: Any) -> dict[str, Any]:
        files = {"image": ("scene.png", scene_image(), "image/png")}
        response = client.post("/v1/models", headers=caller.headers, data=fields, files=files)
        assert response.status_code == 202, response.text
        return dict(response.json())

    a_models = [train(a) for _ in range(3)]
    b_model = train(b)
    # A queued three first, B one after: B's comes second, behind A's first only.
    assert [m["queue_position"] for m in a_models] == [0, 1, 2]  # as answered at creation
    assert [queue.priorities[m["train_job_id"]] for m in a_models] == [0, 1, 2]
    assert queue.priorities[b_model["train_job_id"]] == 0

    def position(caller: Any, model: dict[str, Any]) -> tuple[int, int]:
        as_model = client.get(f"/v1/models/{model['id']}", headers=caller.headers).json()
        as_job = client.get(f"/v1/jobs/{model['train_job_id']}", headers=caller.headers).json()
        return as_model["queue_position"], as_job["queue_position"]

    assert [position(a, m) for m in a_models] == [(0, 0), (2, 2), (3, 3)]
    assert position(b, b_model) == (1, 1)
    listed = client.get("/v1/models", headers=a.headers).json()["data"]
    assert sorted(m["queue_position"] for m in listed) == [0, 2, 3]

    # The embedded worker claims in the same order; a running job has no position, the rest move up.
    with db.transaction() as session:
        first = jobs.next_queued_job_id(session)
        assert first == a_models[0]["train_job_id"]
        assert jobs.claim(session, first, "test-worker", max_attempts=3)
    with db.read() as session:
        assert jobs.next_queued_job_id(session) == b_model["train_job_id"]
    assert position(a, a_models[0]) == (None, None)
    assert position(b, b_model) == (0, 0)
    assert [position(a, m) for m in a_models[1:]] == [(1, 1), (2, 2)]
    cancel_leftover_jobs(db)
