"""Load test of the HTTP API with wrk (a C load generator: it measures the server, not a Python client).

    apt-get install -y wrk                                  # Debian's wrk 4.1
    .venv/bin/python bench/wrk_load.py                      # 200 connections, 60 s, the read routes mixed
    .venv/bin/python bench/wrk_load.py --each --duration 20 # each read route alone
    .venv/bin/python bench/wrk_load.py --think-ms 0         # closed loop: every connection back-to-back
    .venv/bin/python bench/wrk_load.py --writes             # and a run with creates mixed in

The API runs as production runs it (`uvicorn --factory api.app:create_app --workers N`) on loopback against a
fresh database (Postgres `consingan_bench_<random>`, dropped afterwards; or SQLite) and a local storage folder
(sample URLs are this API's own routes, so no presigning). The queue is the boundary: nothing is sent and no
worker runs. The seeded owner has 25 models; one is trained-looking (succeeded train job, 8 previews, events).

Each wrk connection sends `Authorization: Bearer <key>` from a Lua script, picks a route at random, and pauses
`--think-ms` (uniform 0..2x, like a client polling a job) between its requests: 200 connections with 1 s of
thinking offer ~200 requests/s, a realistic fleet of pollers. With `--think-ms 0` every connection sends
back-to-back: the latency is then mostly queueing (Little's law: 200 in flight / throughput) and the number to
read is requests/s. Prints p50/p99/max latency, requests/s, non-2xx and 5xx per run.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import api_process, cpu_seconds, fresh_database, new_key

LUA = r"""
local routes = {ROUTES}  -- {method, path, content type or "", file with the body or ""}
local auth = "Bearer KEY"
local think_ms = THINK
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  server_errors, not_ok = 0, 0
  bodies = {}
  for i, route in ipairs(routes) do
    if route[4] ~= "" then
      local file = io.open(route[4], "rb")
      bodies[i] = file:read("*a")
      file:close()
    end
  end
end

function request()
  local i = math.random(#routes)
  local route = routes[i]
  local headers = {["Authorization"] = auth}
  if route[3] ~= "" then headers["Content-Type"] = route[3] end
  return wrk.format(route[1], route[2], headers, bodies[i])
end

function delay()
  if think_ms > 0 then return math.random(0, 2 * think_ms) end
  return 0
end

function response(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1 end
  if status >= 300 then not_ok = not_ok + 1 end
end

function done(summary, latency, requests)
  local e5, bad = 0, 0
  for _, t in ipairs(threads) do
    e5 = e5 + t:get("server_errors")
    bad = bad + t:get("not_ok")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f p50=%.3f p99=%.3f max=%.3f not_ok=%d e5xx=%d socket=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, bad, e5, e.connect + e.read + e.write + e.timeout))
end
"""
BOUNDARY = "consingan-wrk-boundary"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    content_type: str = ""
    body: bytes = b""


def _multipart_model(png: bytes) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="preset"\r\n\r\nquick\r\n'.encode(),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'.encode()
        + b"Content-Type: image/png\r\n\r\n"
        + png
        + b"\r\n",
        f"--{BOUNDARY}--\r\n".encode(),
    ]
    return b"".join(parts)


def seed(database_url: str, storage_dir: Path) -> tuple[str, dict[str, Route], dict[str, Route]]:
    """The key and the read routes of a realistic owner: 25 models, one trained with 8 previews."""
    from core import jobs
    from core.db import Database
    from core.ids import new_id
    from core.models import JobKind, Model, Sample, utcnow
    from core.storage import LocalStorage, checkpoint_key, input_key, sample_key

    key, owner_id = new_key(database_url)
    db, storage = Database(database_url), LocalStorage(storage_dir)
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(picture, format="PNG")
    data = picture.getvalue()
    with db.transaction() as session:
        for i in range(25):
            model_id = new_id("mdl")
            storage.put(input_key(model_id), data, "image/png")
            model = Model(
                id=model_id, owner_id=owner_id, params={"preset": "quick", "seed": i},
                train_config={"train_stages": 4, "max_size": 64}, image_width=64, image_height=48,
                input_key=input_key(model_id), checkpoint_key=checkpoint_key(model_id), created_at=utcnow(),
            )  # fmt: skip
            session.add(model)
            session.flush()
            job = jobs.create_job(session, model, JobKind.TRAIN)
            assert jobs.claim(session, job.id, "bench", 3) and jobs.succeed(session, job)
            for _ in range(8):
                sample_id = new_id("smp")
                storage.put(sample_key(model_id, sample_id), data, "image/png")
                session.add(
                    Sample(
                        id=sample_id, owner_id=owner_id, model_id=model_id, job_id=job.id,
                        key=sample_key(model_id, sample_id), width=64, height=48, size_bytes=len(data),
                        is_preview=True, created_at=utcnow(),
                    )
                )  # fmt: skip
        reads = {
            "GET /v1/models": Route("GET", "/v1/models?limit=20"),
            "GET /v1/models/{id}": Route("GET", f"/v1/models/{model_id}"),
            "GET /v1/models/{id}/samples": Route("GET", f"/v1/models/{model_id}/samples"),
            "GET /v1/jobs/{id}": Route("GET", f"/v1/jobs/{job.id}"),
            "GET /v1/jobs/{id}/events": Route("GET", f"/v1/jobs/{job.id}/events"),
        }
    writes = {
        "POST /v1/models/{id}/samples": Route(
            "POST", f"/v1/models/{model_id}/samples", "application/json", b'{"n": 2, "seed": 1}'
        ),
        "POST /v1/models": Route(
            "POST", "/v1/models", f"multipart/form-data; boundary={BOUNDARY}", _multipart_model(data)
        ),
    }
    db.dispose()
    return key, reads, writes


def run_wrk(
    base: str, key: str, routes: list[Route], args: argparse.Namespace, workdir: Path
) -> dict[str, float]:
    entries = []
    for i, route in enumerate(routes):
        body_file = ""
        if route.body:
            body_file = str(workdir / f"body-{i}")
            Path(body_file).write_bytes(route.body)
        entries.append(f'{{"{route.method}", "{route.path}", "{route.content_type}", "{body_file}"}}')
    script = workdir / "load.lua"
    lua = LUA.replace("{ROUTES}", "{" + ", ".join(entries) + "}").replace("KEY", key)
    script.write_text(lua.replace("THINK", str(args.think_ms)))
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "10s",
               "-s", str(script), base]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if not match:
        raise SystemExit(f"no result from wrk:\n{output}")
    return {name: float(value) for name, value in (item.split("=") for item in match.group(1).split())}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--duration", type=int, default=60, help="seconds per run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--think-ms", type=int, default=1000, help="mean pause between a connection's requests"
    )
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--each", action="store_true", help="also run every route alone")
    parser.add_argument(
        "--writes", action="store_true", help="also a run mixing in creates (POST samples and models)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    rows = []
    load_before = f"{os.getloadavg()[0]:.1f}"
    with tempfile.TemporaryDirectory(prefix="consingan-wrk-") as tmp:
        workdir = Path(tmp)
        with fresh_database(args.database, workdir) as database_url:
            key, reads, writes = seed(database_url, workdir / "objects")
            env = {
                "CONSINGAN_DATABASE_URL": database_url,
                "CONSINGAN_QUEUE_MODE": "embedded",  # the queue boundary: nothing is sent
                "CONSINGAN_STORAGE_BACKEND": "local",
                "CONSINGAN_STORAGE_DIR": str(workdir / "objects"),
                "CONSINGAN_MAX_QUEUED_JOBS_PER_OWNER": str(10**9),  # created jobs stay queued: no cap
                "CONSINGAN_LOG_LEVEL": "WARNING",
            }
            with api_process(env, workers=args.workers, log_path=workdir / "api.log") as (base, pid):
                runs = [("read routes, mixed", list(reads.values()))]
                if args.each:
                    runs += [(name, [route]) for name, route in reads.items()]
                if args.writes:
                    # 20 reads : 2 sample creates : 1 model create (the old bench/load.py had 85 : 10 : 5)
                    mixed = list(reads.values()) * 4 + [writes["POST /v1/models/{id}/samples"]] * 2
                    runs.append(("reads + creates", [*mixed, writes["POST /v1/models"]]))
                for name, chosen in runs:
                    cpu = cpu_seconds(pid)
                    result = run_wrk(base, key, chosen, args, workdir)
                    # the server's own CPU per request: what a competing load on the machine does not change
                    result["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(result["requests"], 1)
                    rows.append((name, result))
                    print(f"{name}: {result}", file=sys.stderr)
            errors = [line for line in (workdir / "api.log").read_text().splitlines() if "ERROR" in line]
    print(
        f"\n{args.connections} connections, {args.duration} s per run, think {args.think_ms} ms, "
        f"wrk -t{args.threads}; API: {args.workers} uvicorn workers, {args.database}, local storage, "
        f"{os.cpu_count()} CPUs"
    )
    header = (
        f"{'run':28} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non-2xx':>8} "
        f"{'5xx':>5} {'sock':>5} {'API CPU ms/req':>15}"
    )
    print(header)
    for name, r in rows:
        print(
            f"{name:28} {r['requests']:9.0f} {r['requests'] / r['seconds']:8.1f} {r['p50']:8.1f} "
            f"{r['p99']:8.1f} {r['max']:8.1f} {r['not_ok']:8.0f} {r['e5xx']:5.0f} {r['socket']:5.0f} "
            f"{r['cpu_ms']:15.2f}"
        )
    print(f"load average before/after: {load_before} / {os.getloadavg()[0]:.1f} (other work on this machine)")
    if errors:
        print(f"API log: {len(errors)} ERROR lines, first: {errors[0]}")
    return 1 if any(r["e5xx"] for _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
