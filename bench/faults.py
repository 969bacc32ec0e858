"""Fault benchmark: the dependency fault tests (tests/faults) with long outages and production timings.

    .venv/bin/python bench/faults.py [--outage 60,300] [--jobs 4]

For each outage length, every scenario of tests/faults/test_faults_dependencies.py runs once against a
private Redis, a private Postgres (initdb + pg_ctl) and an S3 server behind a switchable proxy, with a real
API and real Celery workers, at the service's default heartbeat, reaper and retry settings
(CONSINGAN_FAULTS_PRODUCTION_TIMINGS=1). Prints one table: per scenario the jobs, how they ended, and the
seconds from the dependency's return until every unfinished job was running or queued with a live message.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "fault summary: "


def run(outage_s: float, jobs: int) -> tuple[list[dict[str, object]], list[str]]:
    env = {
        **os.environ,
        "CONSINGAN_FAULTS_OUTAGE_S": str(outage_s),
        "CONSINGAN_FAULTS_JOBS": str(jobs),
        "CONSINGAN_FAULTS_PRODUCTION_TIMINGS": "1",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-o", "log_cli=false"]
    command += ["--timeout", str(int(3600 + 10 * outage_s)), "tests/faults/test_faults_dependencies.py"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    rows = [json.loads(line.split(MARK, 1)[1]) for line in result.stdout.splitlines() if MARK in line]
    failures = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    if result.returncode not in (0, 1):
        failures.append(f"pytest exited {result.returncode}: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return rows, failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outage", default="60,300", help="outage lengths in seconds, comma-separated")
    parser.add_argument("--jobs", type=int, default=4, help="tiny trainings per scenario")
    args = parser.parse_args()
    header = (
        "| outage | scenario | jobs | succeeded | failed | stuck | duplicated | given back | recovered in |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    all_failures: list[str] = []
    for outage_s in (float(x) for x in args.outage.split(",")):
        rows, failures = run(outage_s, args.jobs)
        all_failures += [f"{outage_s:g} s: {f}" for f in failures]
        for row in rows:
            recovered = "-" if row["recover_s"] is None else f"{row['recover_s']} s"
            lines.append(
                f"| {row['outage_s']:g} s | {row['scenario']} | {row['jobs']} | {row['succeeded']} | "
                f"{row['failed']} | {row['stuck']} | {row['duplicated']} | {row['given_back']} | {recovered} |"
            )
        print(f"outage {outage_s:g} s done: {len(rows)} scenarios, {len(failures)} failures", flush=True)
    print("\n".join(lines))
    for failure in all_failures:
        print(failure)
    return 1 if all_failures else 0


if __name__ == "__main__":
    sys.exit(main())
