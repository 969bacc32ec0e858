"""A real API process for the HTTP benchmarks: a fresh database (Postgres or SQLite), an owner with a key, and
`uvicorn --factory api.app:create_app` on loopback, as production runs it. No torch is imported here."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POSTGRES_ADMIN_URL = os.environ.get(
    "CONSINGAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@localhost:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated database: Postgres `consingan_bench_<random>` (dropped afterwards) or a SQLite file."""
    from sqlalchemy import create_engine, text

    from core.migrate import upgrade_to_head

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade_to_head(url)
        yield url
        return
    name = f"consingan_bench_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade_to_head(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its children (uvicorn's worker processes), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def new_key(database_url: str) -> tuple[str, str]:
    """(api key, owner id) of a new owner."""
    from core.db import Database
    from core.keys import create_key, get_or_create_owner

    db = Database(database_url)
    with db.transaction() as session:
        owner = get_or_create_owner(session, f"bench-{secrets.token_hex(4)}")
        key, owner_id = create_key(session, owner), owner.id
    db.dispose()
    return key, owner_id


@contextmanager
def api_process(
    env: dict[str, str], workers: int = 1, log_path: Path | None = None
) -> Iterator[tuple[str, int]]:
    """(base URL, pid) of a uvicorn API with `env` (CONSINGAN_* settings) on a free loopback port. With one
    worker the pid is the serving process itself."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log", "--backlog", "4096",
               "--workers", str(workers)]  # fmt: skip
    log = log_path.open("wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        if log_path:
            log.close()  # type: ignore[union-attr]
