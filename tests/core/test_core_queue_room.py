"""`claim_queue_room` takes the owner's lock BEFORE it counts, on Postgres (row lock) and SQLite (the write
lock, which pysqlite takes at the UPDATE, the transaction's first statement): a second submission waits for
the first to commit and then counts its job. Deterministic; the real-concurrency test through a uvicorn
process is tests/api/test_api_queue_cap_race.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import jobs
from core.db import Database
from core.errors import TooManyJobs
from core.ids import new_id
from core.keys import get_or_create_owner
from core.migrate import upgrade_to_head
from core.models import JobKind, Model, utcnow
from core.settings import get_settings
from core.submit import claim_queue_room


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: Any, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgres":
        url = str(request.getfixturevalue("pg_url"))
    else:
        url = f"sqlite:///{tmp_path / 'room.db'}"
        upgrade_to_head(url)
    database = Database(url)
    yield database
    database.dispose()


def test_a_second_claim_waits_for_the_first_and_counts_its_job(db: Database) -> None:
    settings = get_settings(max_queued_jobs_per_owner=1)
    with db.transaction() as session:
        owner = get_or_create_owner(session, f"room-{time.time_ns()}")
        model = Model(
            id=new_id("mdl"), owner_id=owner.id, params={}, image_width=48, image_height=40,
            input_key="models/x/input.png", created_at=utcnow(),
        )  # fmt: skip
        session.add(model)
        owner_id = owner.id
    second: list[str] = []

    def claim_again() -> None:
        with db.read() as session:
            try:
                claim_queue_room(session, owner_id, settings)
                second.append("room")
            except TooManyJobs:
                second.append("429")

    with db.read() as first:
        claim_queue_room(first, owner_id, settings)  # 0 of 1: room
        jobs.create_job(first, first.get_one(Model, model.id), JobKind.TRAIN)
        thread = threading.Thread(target=claim_again)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive() and second == [], "the second claim counted before the first committed"
        first.commit()
    thread.join(20)
    assert second == ["429"]
