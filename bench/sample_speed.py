"""Sampling throughput: eager `engine.sample` vs the graph-captured sampler, in one run.

    python bench/sample_speed.py ../shared/images/generation/angkorwat.jpg --device cuda --batches 1,16,64

Trains a model first (--iters per stage, default 50: sampling speed does not depend on how well it was
trained) or loads one from --model DIR (a `python -m engine train` output). Prints samples/s per batch
size for the eager path (the reference) and the captured one, in fp32 and bf16 + channels-last.
`measure` is what bench/gpu_check.py calls.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from common import device_name, print_table, synchronize

import engine
from engine.fast import CapturedSampler


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", type=Path, nargs="?")
    parser.add_argument("--model", type=Path, help="a trained model directory instead of training")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent measuring each row")
    return parser.parse_args(argv)


def rate(draw: Callable[[], torch.Tensor], batch: int, device: str, seconds: float) -> float:
    draw()  # warm-up
    synchronize(device)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        draw()
        calls += 1
    synchronize(device)
    return calls * batch / (time.perf_counter() - started)


def load_or_train(args: argparse.Namespace) -> engine.TrainedModel:
    if args.model:
        return engine.checkpoint.from_bytes((args.model / "model.safetensors").read_bytes(), args.device)
    if args.image is None:
        raise SystemExit("give an IMAGE to train on, or --model DIR")
    cfg = engine.TrainConfig.preset("paper", iters_per_stage=args.iters)
    image = engine.load_image(args.image.read_bytes())
    return engine.train(image, cfg, device=args.device, rng=engine.make_rng(0, args.device))


def measure(
    model: engine.TrainedModel, batches: Sequence[int], device: str, seconds: float
) -> list[dict[str, Any]]:
    """Samples/s per batch size: eager `engine.sample`, the captured sampler in fp32, and captured in bf16
    with channels-last memory (bf16 and channels-last apply on CUDA only)."""
    rng = engine.make_rng(1, device)
    rows = []
    for batch in batches:
        eager = rate(lambda b=batch: engine.sample(model, b, rng=rng), batch, device, seconds)
        captured = CapturedSampler(model, batch)
        graphed = rate(lambda s=captured: s(rng), batch, device, seconds)
        fast = CapturedSampler(model, batch, bf16=True, channels_last=device == "cuda")
        fastest = rate(lambda s=fast: s(rng), batch, device, seconds)
        model.generator.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        rows.append({"batch": batch, "eager": eager, "captured": graphed, "captured_bf16": fastest})
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    model = load_or_train(args)
    rows = measure(model, [int(b) for b in args.batches.split(",")], args.device, args.seconds)
    height, width = model.stage_shapes[-1]
    print(f"samples/s at {height}x{width}, {device_name(args.device)}")
    print_table(
        ["batch", "eager (reference)", "captured fp32", "captured bf16+CL", "best speed-up"],
        [
            (
                row["batch"],
                f"{row['eager']:,.0f}",
                f"{row['captured']:,.0f}",
                f"{row['captured_bf16']:,.0f}",
                f"{max(row['captured'], row['captured_bf16']) / row['eager']:.1f}x",
            )
            for row in rows
        ],
    )


if __name__ == "__main__":
    main()
