"""Reference path vs fast path: the same image, the same config, one run, one table.

    python bench/train_speed.py ../shared/images/generation/angkorwat.jpg --preset paper --device cuda

Prints per-stage and total seconds, the fast path's speed-up over the reference (a ratio measured in this
run, on this machine), peak GPU memory, and SIFID (64-channel stem) of --n samples of each model, so a
speed-up that costs quality shows. Needs the bench extra for SIFID: pip install '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from common import StageTimer, device_name, print_table, synchronize

import engine
from engine import metrics
from engine.fast import FastOptions


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", type=Path)
    parser.add_argument("--preset", choices=["paper", "quick"], default="paper")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--iters", type=int, default=None, help="override iters_per_stage (smoke runs)")
    parser.add_argument("--n", type=int, default=50, help="samples scored by SIFID per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paths", default="reference,fast", help="comma-separated, first is the baseline")
    parser.add_argument("--bf16", action="store_true", help="fast path with bf16 autocast")
    parser.add_argument("--no-graphs", action="store_true", help="fast path without CUDA graphs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def train_once(image: torch.Tensor, args: argparse.Namespace, path: str) -> dict[str, Any]:
    overrides = {"iters_per_stage": args.iters} if args.iters else {}
    cfg = engine.TrainConfig.preset(args.preset, **overrides)
    options = FastOptions(bf16=args.bf16, cuda_graphs=not args.no_graphs)
    if args.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    timer = StageTimer()
    synchronize(args.device)
    started = time.perf_counter()
    model = engine.train(
        image,
        cfg,
        device=args.device,
        rng=engine.make_rng(args.seed, args.device),
        on_progress=timer,
        progress_every=100,
        path=path,  # type: ignore[arg-type]
        fast_options=options,
    )
    synchronize(args.device)
    total = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else float("nan")
    samples = engine.sample(model, args.n, rng=engine.make_rng(args.seed + 1, args.device))
    sifid = metrics.summarize(metrics.sifid(model.reals[-1], samples, device=args.device))
    return {"path": path, "stage_s": timer.per_stage_s(), "total_s": total, "peak_mib": peak, "sifid": sifid}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    metrics.fid_weights_path()  # fail now, not after minutes of training, when the extra is missing
    image = engine.load_image(args.image.read_bytes())
    results = [train_once(image, args, path) for path in args.paths.split(",")]
    baseline = results[0]["total_s"]
    print(
        f"{args.image.name}, preset {args.preset}, iters {args.iters or 'default'}, {device_name(args.device)}"
    )
    rows = [
        (
            r["path"],
            " / ".join(f"{s:.1f}" for s in r["stage_s"]),
            f"{r['total_s']:.1f}",
            f"{baseline / r['total_s']:.2f}x",
            f"{r['peak_mib']:.0f}",
            "{mean:.4f} / {median:.4f}".format(**r["sifid"]),
        )
        for r in results
    ]
    print_table(["path", "seconds per stage", "total s", "speed-up", "peak MiB", "SIFID mean / median"], rows)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"image": str(args.image), "json": None}, "results": results},
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
