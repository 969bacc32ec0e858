"""Load test of the HTTP API: N concurrent clients for D seconds against reads and creates, on loopback.

    .venv/bin/python bench/load.py                       # 200 clients, 60 s, Postgres at localhost
    .venv/bin/python bench/load.py --clients 50 --duration 10 --database sqlite

The API runs as production runs it (`uvicorn --factory api.app:create_app`, one process) against a fresh
database (Postgres `consingan_bench_<random>`, dropped afterwards; or a SQLite file) and a local storage
folder. The queue is mocked at the boundary: `queue_mode=embedded` sends nothing and no worker runs, so
created jobs stay queued (the per-owner queue limit is lifted for the run). Prints p50/p99 latency, requests,
errors and 5xx per endpoint. Targets: p99 < 100 ms for reads, zero 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READS = {"GET /v1/models/{id}", "GET /v1/models", "GET /v1/jobs/{id}", "GET /v1/jobs/{id}/events",
         "GET /v1/models/{id}/samples", "GET /healthz"}  # fmt: skip
# (name, weight): what a client does on each turn.
MIX = [
    ("GET /v1/models/{id}", 30),
    ("GET /v1/models", 15),
    ("GET /v1/jobs/{id}", 15),
    ("GET /v1/jobs/{id}/events", 10),
    ("GET /v1/models/{id}/samples", 10),
    ("GET /healthz", 5),
    ("POST /v1/models/{id}/samples", 10),
    ("POST /v1/models", 5),
]


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    server_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (48, 40), (120, 30, 200)).save(out, format="PNG")
    return out.getvalue()


def _seed(database_url: str, storage_dir: Path) -> tuple[str, str, str]:
    """An owner with a key, and a trained-looking model (succeeded train job, checkpoint key, a preview)."""
    from core import jobs
    from core.db import Database
    from core.ids import new_id
    from core.keys import create_key, get_or_create_owner
    from core.migrate import upgrade_to_head
    from core.models import JobKind, Model, Sample, utcnow
    from core.storage import LocalStorage, checkpoint_key, input_key, sample_key

    upgrade_to_head(database_url)
    db = Database(database_url)
    storage = LocalStorage(storage_dir)
    png = _png()
    model_id, sample_id = new_id("mdl"), new_id("smp")
    storage.put(input_key(model_id), png, "image/png")
    storage.put(sample_key(model_id, sample_id), png, "image/png")
    with db.transaction() as session:
        owner = get_or_create_owner(session, f"load-{secrets.token_hex(4)}")
        key = create_key(session, owner)
        model = Model(
            id=model_id, owner_id=owner.id, params={"preset": "quick"}, train_config={"train_stages": 2},
            image_width=48, image_height=40, input_key=input_key(model_id), checkpoint_key=checkpoint_key(model_id),
        )  # fmt: skip
        session.add(model)
        session.flush()
        job = jobs.create_job(session, model, JobKind.TRAIN)
        assert jobs.claim(session, job.id, "bench", 3) and jobs.succeed(session, job)
        session.add(
            Sample(
                id=sample_id,
                owner_id=owner.id,
                model_id=model_id,
                job_id=job.id,
                key=sample_key(model_id, sample_id),
                width=48,
                height=40,
                size_bytes=len(png),
                is_preview=True,
                created_at=utcnow(),
            )
        )
        job_id = job.id
    db.dispose()
    return key, model_id, job_id


async def _client(
    http: httpx.AsyncClient,
    stats: Stats,
    stop_at: float,
    rng: random.Random,
    ids: tuple[str, str],
    png: bytes,
    think_s: float,
) -> None:
    model_id, job_id = ids
    names, weights = zip(*MIX, strict=True)
    await asyncio.sleep(rng.uniform(0, 2 * think_s))  # do not start in lockstep
    while time.monotonic() < stop_at:
        name = rng.choices(names, weights)[0]
        started = time.perf_counter()
        try:
            if name == "GET /v1/models/{id}":
                r = await http.get(f"/v1/models/{model_id}")
            elif name == "GET /v1/models":
                r = await http.get("/v1/models", params={"limit": 20})
            elif name == "GET /v1/jobs/{id}":
                r = await http.get(f"/v1/jobs/{job_id}")
            elif name == "GET /v1/jobs/{id}/events":
                r = await http.get(f"/v1/jobs/{job_id}/events")
            elif name == "GET /v1/models/{id}/samples":
                r = await http.get(f"/v1/models/{model_id}/samples")
            elif name == "GET /healthz":
                r = await http.get("/healthz")
            elif name == "POST /v1/models/{id}/samples":
                r = await http.post(
                    f"/v1/models/{model_id}/samples", json={"n": 2, "seed": rng.randrange(1000)}
                )
            else:
                r = await http.post(
                    "/v1/models", data={"preset": "quick"}, files={"image": ("a.png", png, "image/png")}
                )
            status = r.status_code
        except httpx.HTTPError:
            status = 0
        stats.latencies[name].append(time.perf_counter() - started)
        if not 200 <= status < 300:
            stats.errors[name] += 1
        if status >= 500:
            stats.server_errors[name] += 1
        if think_s > 0:
            await asyncio.sleep(rng.uniform(0, 2 * think_s))


async def _run(
    base_url: str, key: str, ids: tuple[str, str], clients: int, duration: float, think_s: float
) -> Stats:
    stats = Stats()
    png = _png()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30) as http:
        stop_at = time.monotonic() + duration
        await asyncio.gather(
            *(_client(http, stats, stop_at, random.Random(i), ids, png, think_s) for i in range(clients))
        )
    return stats


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _print_table(stats: Stats, duration: float) -> None:
    print(
        f"\n{'endpoint':32} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'5xx':>5}"
    )
    total = 0
    for name, _ in MIX:
        values = stats.latencies.get(name, [])
        if not values:
            continue
        total += len(values)
        print(
            f"{name:32} {len(values):9d} {len(values) / duration:7.1f} {statistics.median(values) * 1000:8.1f} "
            f"{_percentile(values, 0.99) * 1000:8.1f} {stats.errors[name]:7d} {stats.server_errors[name]:5d}"
        )
    reads = [v for name, values in stats.latencies.items() if name in READS for v in values]
    print(f"{'all reads':32} {len(reads):9d} {len(reads) / duration:7.1f} {statistics.median(reads) * 1000:8.1f} "
          f"{_percentile(reads, 0.99) * 1000:8.1f} {sum(stats.errors[n] for n in READS):7d} "
          f"{sum(stats.server_errors[n] for n in READS):5d}")  # fmt: skip
    print(f"total {total} requests in {duration:.0f} s = {total / duration:.0f} req/s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="mean pause (s) of a client between its requests (uniform 0..2x); 0 = back-to-back (capacity)",
    )
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CONSINGAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@localhost:5432/postgres"
        ),
    )
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    workdir = Path(tempfile.mkdtemp(prefix="consingan-load-"))
    admin = None
    if args.database == "postgres":
        name = f"consingan_bench_{secrets.token_hex(4)}"
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        database_url = args.postgres_url.rsplit("/", 1)[0] + f"/{name}"
    else:
        database_url = f"sqlite:///{workdir / 'load.db'}"
    port = _free_port()
    api = None
    try:
        key, model_id, job_id = _seed(database_url, workdir / "objects")
        env = {
            **os.environ,
            "CONSINGAN_DATABASE_URL": database_url,
            "CONSINGAN_QUEUE_MODE": "embedded",  # the queue boundary: nothing is sent, no worker runs
            "CONSINGAN_STORAGE_BACKEND": "local",
            "CONSINGAN_STORAGE_DIR": str(workdir / "objects"),
            "CONSINGAN_MAX_QUEUED_JOBS_PER_OWNER": str(10**9),
            "CONSINGAN_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
                   "--port", str(port), "--log-level", "warning", "--no-access-log", "--backlog", "4096"]  # fmt: skip
        api = subprocess.Popen(command, cwd=ROOT, env=env)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or api.poll() is not None:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        print(
            f"{args.clients} clients, think {args.think:g} s, for {args.duration:.0f} s against {base_url} "
            f"({args.database}, {os.cpu_count()} CPUs)"
        )
        stats = asyncio.run(_run(base_url, key, (model_id, job_id), args.clients, args.duration, args.think))
        _print_table(stats, args.duration)
        return 1 if any(stats.server_errors.values()) else 0
    finally:
        if api is not None:
            api.terminate()
            api.wait(30)
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
