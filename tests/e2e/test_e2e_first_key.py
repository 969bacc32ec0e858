"""A key without a shell detour: the first `make run` (`python -m worker.embedded` on a fresh database)
creates a local owner and prints its key once, with where to paste it; a restart prints none; `make key`
makes another that works."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.db import Database
from core.keys import owner_for_key

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
KEY = re.compile(r"^\s+(csk_[A-Za-z0-9_-]{20,})\s*$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_until_up(env: dict[str, str], log_path: Path) -> str:
    """Start the embedded runner, wait for "embedded service up", stop it; returns what it printed."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.embedded"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while b"embedded service up" not in log_path.read_bytes():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        if env.get("CHECK_KEY"):
            answer = httpx.get(
                f"http://127.0.0.1:{env['CONSINGAN_PORT']}/v1/models",
                headers={"Authorization": f"Bearer {env['CHECK_KEY']}"},
            )
            assert answer.status_code == 200, answer.text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    return log_path.read_text()


def test_first_run_prints_a_working_key_once_and_make_key_makes_another(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'data' / 'consingan.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSINGAN_")},
        "CONSINGAN_DATABASE_URL": database_url,
        "CONSINGAN_STORAGE_DIR": str(tmp_path / "data" / "objects"),
        "CONSINGAN_PORT": str(free_port()),
        "CONSINGAN_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
    }
    first = run_until_up(env, tmp_path / "first.log")
    keys = KEY.findall(first)
    assert len(keys) == 1, first
    assert 'Paste it into the page\'s "API key" field at http://127.0.0.1:' in first
    assert "make key" in first

    second = run_until_up({**env, "CHECK_KEY": keys[0]}, tmp_path / "second.log")  # the key works
    assert KEY.findall(second) == [], second  # and is never shown again

    (tmp_path / "stamp").touch()  # `make key` needs the venv installed: it is (this test runs in it)
    made = subprocess.run(
        ["make", "-s", "key", "OWNER=alice", f"PY={sys.executable}", f"STAMP={tmp_path / 'stamp'}"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    another = next(
        line.split(":", 1)[1].strip() for line in made.stdout.splitlines() if line.startswith("api key")
    )
    db = Database(database_url)
    try:
        with db.read() as session:
            owner = owner_for_key(session, another)
            assert owner is not None and owner.name == "alice"
            first_owner = owner_for_key(session, keys[0])
            assert first_owner is not None and first_owner.name == "local"
    finally:
        db.dispose()
