"""Models per GPU-hour when several trainings share one GPU, at each concurrency, in one run.

    python bench/throughput.py ../shared/images/generation/angkorwat.jpg --concurrency 1,2,4,8

Starts N training processes at once, as N worker slots on one GPU would be. Each loads torch, the image
and its CUDA context, says it is ready and waits; when all are ready they start together and train
(`engine.train`, the fast path on CUDA). models/hour = N * 3600 / (seconds from the start to the last
one's end): process start-up is left out, since a long-lived worker pays it once. Concurrency 1 is the
reference row; pick the worker's default concurrency per GPU from the best row. `measure` is what
bench/gpu_check.py calls.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import print_table

READY = "ready"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", type=Path)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--preset", choices=["paper", "quick"], default="paper")
    parser.add_argument("--iters", type=int, default=None, help="override iters_per_stage (shorter runs)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)  # the child's
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """One training slot: get ready, wait for the go line on stdin, train, print its seconds as JSON."""
    import torch
    from common import synchronize

    import engine

    overrides = {"iters_per_stage": args.iters} if args.iters else {}
    cfg = engine.TrainConfig.preset(args.preset, **overrides)
    image = engine.load_image(args.image.read_bytes())
    torch.zeros(1, device=args.device)  # the CUDA context exists before the clock starts
    print(READY, flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    engine.train(image, cfg, device=args.device, rng=engine.make_rng(args.seed, args.device))
    synchronize(args.device)
    print(json.dumps({"train_s": time.perf_counter() - started}), flush=True)


def run_together(
    image: Path, count: int, *, preset: str, iters: int | None, device: str, timeout_s: float | None = None
) -> dict[str, Any]:
    """Train `count` models at once; wall seconds from the common start to the last end, and each one's."""
    extra = ["--iters", str(iters)] if iters else []
    command = [sys.executable, __file__, str(image), "--child", "--preset", preset, "--device", device]
    processes = [
        subprocess.Popen(
            [*command, *extra, "--seed", str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != READY:
                raise RuntimeError(f"a training process failed to start (exit {process.wait()})")
        started = time.perf_counter()
        deadline = started + timeout_s if timeout_s is not None else None
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        own = []
        for process in processes:
            left = None if deadline is None else max(deadline - time.perf_counter(), 0.1)
            out, _ = process.communicate(timeout=left)
            if process.returncode != 0:
                raise RuntimeError(f"a training failed (exit {process.returncode})")
            own.append(json.loads(out.strip().splitlines()[-1])["train_s"])
        wall = time.perf_counter() - started
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return {"concurrent": count, "wall_s": wall, "train_s": own, "models_per_hour": count * 3600 / wall}


def measure(
    image: Path,
    counts: Sequence[int],
    *,
    preset: str,
    iters: int | None,
    device: str,
    stop_after_s: float | None = None,
    on_row: Any = None,
) -> list[dict[str, Any]]:
    """One row per concurrency; rows that would end after `stop_after_s` are left out."""
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for count in counts:
        left = None if stop_after_s is None else stop_after_s - (time.perf_counter() - started)
        if left is not None and left <= 0:
            break
        try:
            rows.append(run_together(image, count, preset=preset, iters=iters, device=device, timeout_s=left))
        except subprocess.TimeoutExpired:
            break  # this row would not finish in time: the rows before it stand
        if on_row is not None:
            on_row(rows)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[tuple[object, ...]]]:
    reference = rows[0]["models_per_hour"] if rows else 1.0
    return (
        ["concurrent", "wall s", "s per model", "models/hour", "vs 1"],
        [
            (
                row["concurrent"],
                f"{row['wall_s']:.1f}",
                f"{row['wall_s'] / row['concurrent']:.1f}",
                f"{row['models_per_hour']:.1f}",
                f"{row['models_per_hour'] / reference:.2f}x",
            )
            for row in rows
        ],
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    counts = [int(c) for c in args.concurrency.split(",")]
    rows = measure(args.image, counts, preset=args.preset, iters=args.iters, device=args.device)
    print(f"{args.image.name}, preset {args.preset}, iters {args.iters or 'default'}, device {args.device}")
    print_table(*table(rows))


if __name__ == "__main__":
    main()
