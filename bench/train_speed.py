"""Reference path vs fast path: the same image, the same config, one run, one table.

    python bench/train_speed.py ../shared/images/generation/angkorwat.jpg --preset paper --device cuda

Prints per-stage and total seconds, the fast path's speed-up over the reference (a ratio measured in this
run, on this machine), peak GPU memory, and SIFID (64-channel stem) of --n samples of each model, so a
speed-up that costs quality shows. SIFID needs the bench extra (pip install '.[bench]') or --fid-layers;
without either the column says why it is missing. `train_once` is what bench/gpu_check.py calls.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from common import StageTimer, device_name, print_table, sifid_or_reason, synchronize

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
    parser.add_argument("--fid-layers", type=Path, default=None, help="SIFID's layers file (gpu_check.py)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def train_once(
    image: torch.Tensor,
    cfg: engine.TrainConfig,
    *,
    device: str,
    path: str,
    options: FastOptions | None = None,
    seed: int = 0,
    n: int = 50,
    stop_after_s: float | None = None,
) -> dict[str, Any]:
    """Train once on `image` ([1, 3, H, W] in [-1, 1]) and score `n` samples.

    Returns per-stage and total seconds, peak GPU MiB, SIFID ({"mean", "median"} or the reason it is
    missing), the warnings the training raised (a CUDA graph capture that fell back to eager says so
    there), the model and its samples ([n, 3, h, w]). With `stop_after_s` the training is cancelled at
    that time: "stopped" then says where, the stages finished so far keep their times, and there is no
    model, sample or SIFID.
    """
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    timer = StageTimer(label=path)
    synchronize(device)
    started = time.perf_counter()
    deadline = started + stop_after_s if stop_after_s is not None else float("inf")
    stopped = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _train(image, cfg, device, path, options, seed, timer, deadline)
    if isinstance(model, str):
        stopped, model = f"{model} (budget {stop_after_s:.0f} s)", None
    synchronize(device)
    total = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    samples = None
    sifid: dict[str, float] | str = "n/a: training stopped at its time budget"
    if model is not None:
        samples = engine.sample(model, n, rng=engine.make_rng(seed + 1, device))
        sifid = sifid_or_reason(model.image, samples, device)
    return {
        "path": path,
        "iters_per_stage": cfg.iters_per_stage,
        "stage_s": timer.per_stage_s(),
        "total_s": total,
        "peak_mib": peak,
        "sifid": sifid,
        "stopped": stopped,
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        "_model": model,
        "_samples": samples,
    }


def _train(
    image: torch.Tensor,
    cfg: engine.TrainConfig,
    device: str,
    path: str,
    options: FastOptions | None,
    seed: int,
    timer: StageTimer,
    deadline: float,
) -> engine.TrainedModel | str:
    """The trained model, or where the training was stopped at `deadline`."""
    try:
        return engine.train(
            image,
            cfg,
            device=device,
            rng=engine.make_rng(seed, device),
            on_progress=timer,
            should_stop=lambda: time.perf_counter() > deadline,
            progress_every=100,
            path=path,  # type: ignore[arg-type]
            fast_options=options,
        )
    except engine.TrainingCanceled as canceled:
        return str(canceled)


def format_sifid(sifid: dict[str, float] | str) -> str:
    return sifid if isinstance(sifid, str) else "{mean:.4f} / {median:.4f}".format(**sifid)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.fid_layers:
        metrics.use_feature_layers_file(args.fid_layers)
    image = engine.load_image(args.image.read_bytes())
    overrides = {"iters_per_stage": args.iters} if args.iters else {}
    cfg = engine.TrainConfig.preset(args.preset, **overrides)
    options = FastOptions(bf16=args.bf16, cuda_graphs=not args.no_graphs)
    results = [
        train_once(image, cfg, device=args.device, path=path, options=options, seed=args.seed, n=args.n)
        for path in args.paths.split(",")
    ]
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
            format_sifid(r["sifid"]),
        )
        for r in results
    ]
    print_table(["path", "seconds per stage", "total s", "speed-up", "peak MiB", "SIFID mean / median"], rows)
    if args.json:
        public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"image": str(args.image), "json": None}, "results": public},
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
