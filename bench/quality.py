"""Train one ConSinGAN, sample it and report its quality the way the papers do.

    python bench/quality.py ../shared/images/generation/angkorwat.jpg --preset paper --device cuda --out out/q

Prints the training time per stage and in total, SIFID mean/median over the samples (each sample against the
top-stage training image) and SinGAN's pixel diversity. SIFID is given on the 64-channel Inception stem (our
spec's definition, the headline number) and on the 192-channel block before the second max-pool (what
SinGAN's sifid_score.py computes by default). Needs the bench extra: pip install '.[bench]'.
With --out, writes quality.json and a grid of the first 16 samples (samples.png).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from common import StageTimer, synchronize

import engine
from engine import metrics
from engine.image import to_pil

GRID_SAMPLES = 16


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", type=Path, help="training image (PNG, JPEG or WebP)")
    parser.add_argument("--preset", choices=["paper", "quick"], default="paper")
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["cpu", "cuda"], default=default_device)
    parser.add_argument("--n", type=int, default=50, help="samples to score (default 50, as SinGAN)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=None, help="override iters_per_stage (smoke tests)")
    parser.add_argument("--out", type=Path, default=None, help="folder for quality.json and samples.png")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    image = engine.load_image(args.image.read_bytes())  # [1, 3, H, W] in [-1, 1], original size
    overrides = {"iters_per_stage": args.iters} if args.iters else {}
    cfg = engine.TrainConfig.preset(args.preset, mode="generation", **overrides)
    timer = StageTimer()

    started = time.perf_counter()
    model = engine.train(
        image, cfg, device=args.device, rng=engine.make_rng(args.seed, args.device), on_progress=timer
    )
    synchronize(args.device)
    train_s = time.perf_counter() - started

    started = time.perf_counter()
    samples = engine.sample(model, n=args.n, rng=engine.make_rng(args.seed + 1, args.device))  # [N, 3, h, w]
    synchronize(args.device)
    sample_s = time.perf_counter() - started

    real = model.reals[-1]  # [1, 3, h, w]: the top stage, what every sample is compared with
    return {
        "image": str(args.image),
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "iters_per_stage": cfg.iters_per_stage,
        "stage_shapes": [list(shape) for shape in model.stage_shapes],
        "train_s": train_s,
        "stage_s": timer.per_stage_s(),
        "sample_s": sample_s,
        "n": args.n,
        "sifid64": metrics.summarize(metrics.sifid(real, samples, device=args.device, dims=64)),
        "sifid192": metrics.summarize(metrics.sifid(real, samples, device=args.device, dims=192)),
        "diversity": metrics.pixel_diversity(real, samples),
        "_samples": samples,
    }


def print_table(report: dict[str, Any]) -> None:
    rows = [
        ("image", report["image"]),
        ("preset", f"{report['preset']} ({report['iters_per_stage']} iters/stage)"),
        ("device", report["device"]),
        ("stages (h x w)", ", ".join(f"{h}x{w}" for h, w in report["stage_shapes"])),
        ("train s per stage", " / ".join(f"{s:.1f}" for s in report["stage_s"])),
        ("train s total", f"{report['train_s']:.1f}"),
        (f"sample s ({report['n']} at once)", f"{report['sample_s']:.3f}"),
        ("SIFID 64 mean / median", "{mean:.4f} / {median:.4f}".format(**report["sifid64"])),
        ("SIFID 192 mean / median", "{mean:.4f} / {median:.4f}".format(**report["sifid192"])),
        ("diversity", f"{report['diversity']:.4f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def write_outputs(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    public = {key: value for key, value in report.items() if not key.startswith("_")}
    (out / "quality.json").write_text(json.dumps(public, indent=2) + "\n")
    to_pil(engine.grid(report["_samples"][:GRID_SAMPLES])).save(out / "samples.png")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    metrics.fid_weights_path()  # fail before training, not after, when the bench extra is missing
    report = run(args)
    print_table(report)
    if args.out is not None:
        write_outputs(report, args.out)


if __name__ == "__main__":
    main()
