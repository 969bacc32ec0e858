"""Fault benchmark: the chaos test (tests/e2e/test_chaos.py) with more rounds, printing its summary.

    .venv/bin/python bench/chaos.py --rounds 100 --jobs 12 [--seed 7] [--max-delay 4]

Needs Postgres and Redis on localhost like the test suite (CONSINGAN_TEST_POSTGRES_URL / _REDIS_URL).
A real Celery GPU worker is killed with SIGKILL (with its pool children) at random moments and restarted; at the
end every job must be succeeded or failed with a reason, none trained twice, each webhook delivered.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=100, help="kill -9 / restart cycles")
    parser.add_argument("--jobs", type=int, default=12, help="tiny trainings submitted up front")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the kill moments")
    parser.add_argument("--max-delay", type=float, default=4.0, help="longest wait (s) before a kill")
    args = parser.parse_args()
    env = {
        **os.environ,
        "CONSINGAN_CHAOS_ROUNDS": str(args.rounds),
        "CONSINGAN_CHAOS_JOBS": str(args.jobs),
        "CONSINGAN_CHAOS_MAX_DELAY_S": str(args.max_delay),
    }
    if args.seed is not None:
        env["CONSINGAN_CHAOS_SEED"] = str(args.seed)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-s",
        "-p",
        "no:cacheprovider",
        "tests/e2e/test_chaos.py",
    ]
    command += ["-o", "log_cli=false", "--timeout", str(600 + 30 * args.rounds)]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
