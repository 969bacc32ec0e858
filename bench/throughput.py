"""Models per GPU-hour when several trainings share one GPU, at each concurrency, in one run.

    python bench/throughput.py ../shared/images/generation/angkorwat.jpg --concurrency 1,2,4,8

Starts N independent `python -m engine train` processes at once (as N worker slots on one GPU would),
waits for all, and reports models/hour = N * 3600 / wall seconds; concurrency 1 is the reference row.
Pick the worker's default concurrency per GPU from the best row.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from common import print_table


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", type=Path)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--preset", choices=["paper", "quick"], default="paper")
    parser.add_argument("--iters", type=int, default=None, help="override iters_per_stage (shorter runs)")
    parser.add_argument("--device", default="cuda")
    return parser.parse_args(argv)


def run_batch(args: argparse.Namespace, count: int, workdir: Path) -> float:
    extra = ["--iters", str(args.iters)] if args.iters else []
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine",
                "--device",
                args.device,
                "train",
                str(args.image),
                "--out",
                str(workdir / f"c{count}-{i}"),
                "--preset",
                args.preset,
                "--seed",
                str(i),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    failures = sum(process.wait() != 0 for process in processes)
    if failures:
        raise SystemExit(f"{failures} of {count} trainings failed")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rows = []
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(c) for c in args.concurrency.split(",")):
            wall = run_batch(args, count, Path(tmp))
            per_hour = count * 3600 / wall
            reference = reference or per_hour
            rows.append(
                (
                    count,
                    f"{wall:.1f}",
                    f"{wall / count:.1f}",
                    f"{per_hour:.1f}",
                    f"{per_hour / reference:.2f}x",
                )
            )
    print(f"{args.image.name}, preset {args.preset}, iters {args.iters or 'default'}, device {args.device}")
    print_table(["concurrent", "wall s", "s per model", "models/hour", "vs 1"], rows)


if __name__ == "__main__":
    main()
