"""The per-owner cap of unfinished jobs under real concurrency: a real uvicorn API process (its threadpool runs
the submissions in parallel, each with its own session), N simultaneous `POST /v1/models` of one owner.
Exactly max(0, cap - unfinished) are accepted and the rest get 429, on Postgres and on SQLite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core.db import Database
from core.keys import create_key, get_or_create_owner
from core.migrate import upgrade_to_head
from core.models import Job
from tests.service_fixtures import scene_image, settings_env

CAP = 6
ALREADY_UNFINISHED = 2
PARALLEL = 25
PNG = scene_image()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(settings: Any, database_url: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        **settings_env(settings),
        "CONSINGAN_DATABASE_URL": database_url,
        "CONSINGAN_QUEUE_MODE": "embedded",  # nothing is sent and no worker runs: accepted jobs stay queued
        "CONSINGAN_STORAGE_BACKEND": "local",
        "CONSINGAN_STORAGE_DIR": str(tmp_path / "objects"),
        "CONSINGAN_MAX_QUEUED_JOBS_PER_OWNER": str(CAP),
        "CONSINGAN_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(params=["postgres", "sqlite"])
def api_and_db(request: Any, settings: Any, tmp_path: Path) -> Iterator[tuple[str, Database]]:
    if request.param == "postgres":
        database_url = str(request.getfixturevalue("pg_url"))
    else:
        database_url = f"sqlite:///{tmp_path / 'race.db'}"
        upgrade_to_head(database_url)
    db = Database(database_url)
    try:
        for base in _api(settings, database_url, tmp_path):
            yield base, db
    finally:
        db.dispose()


def _create(base: str, key: str) -> int:
    response = httpx.post(
        f"{base}/v1/models",
        headers={"Authorization": f"Bearer {key}"},
        data={"preset": "quick"},
        files={"image": ("a.png", PNG, "image/png")},
        timeout=60,
    )
    assert response.status_code in (202, 429), response.text
    return response.status_code


def test_parallel_submissions_accept_exactly_the_room_left(api_and_db: tuple[str, Database]) -> None:
    base, db = api_and_db
    with db.transaction() as session:
        owner = get_or_create_owner(session, f"race-{time.time_ns()}")
        key, owner_id = create_key(session, owner), owner.id
    for _ in range(ALREADY_UNFINISHED):
        assert _create(base, key) == 202

    start = threading.Barrier(PARALLEL)
    statuses: list[int] = []

    def one() -> None:
        start.wait()
        statuses.append(_create(base, key))

    threads = [threading.Thread(target=one) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert Counter(statuses) == {202: CAP - ALREADY_UNFINISHED, 429: PARALLEL - (CAP - ALREADY_UNFINISHED)}
    with db.read() as session:
        unfinished = session.scalar(
            select(func.count()).where(Job.owner_id == owner_id, Job.state.in_(["queued", "running"]))
        )
    assert unfinished == CAP
