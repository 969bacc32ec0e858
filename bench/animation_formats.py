"""The same animation as GIF, WebP and MP4: bytes and encode time, one table.

    .venv/bin/python bench/animation_formats.py --checkpoint model.safetensors        # a model you have
    .venv/bin/python bench/animation_formats.py --photo ../shared/images/generation/marinabaysands.jpg

Without --checkpoint it trains the quick preset on --photo first (minutes on a CPU). The walk is rendered once
(engine.animate, --frames at --fps) and encoded three ways by engine.frames_to_animation: GIF (256 colours a
frame), lossless WebP, MP4 (H.264 crf 18, yuv420p). Ratios are against the MP4 of the same run. Each format is
encoded once untimed first (the first MP4 encode also imports PyAV and loads FFmpeg), then timed REPEATS times:
the table gives the median. The load average is printed at the start and at the end: the times are only as
good as the machine was quiet.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import engine

FORMATS = ("gif", "webp", "mp4")
REPEATS = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint", type=Path, help="a model.safetensors (e.g. GET /v1/models/{id}/checkpoint)"
    )
    source.add_argument("--photo", type=Path, help="train the quick preset on this photo first")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write animation.{gif,webp,mp4} into this folder")
    args = parser.parse_args(argv)
    print(f"load average at the start {os.getloadavg()}", flush=True)

    if args.checkpoint:
        model = engine.checkpoint.from_bytes(args.checkpoint.read_bytes(), "cpu")
        origin = str(args.checkpoint)
    else:
        image = engine.load_image(args.photo.read_bytes())
        started = time.perf_counter()
        config = engine.TrainConfig.preset("quick", mode="animation")
        model = engine.train(image, config, device="cpu", rng=engine.make_rng(args.seed))
        origin = f"{args.photo.name}, quick preset, trained in {time.perf_counter() - started:.0f} s"
    frames = engine.animate(model, args.frames, rng=engine.make_rng(args.seed))  # [F, 3, H, W]
    height, width = frames.shape[-2:]
    print(f"model: {origin}; {args.frames} frames of {width} x {height} at {args.fps:g} fps")
    print(f"torch threads {torch.get_num_threads()}")

    sizes: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for fmt in FORMATS:
        data = engine.frames_to_animation(frames, args.fps, fmt)  # warm-up, untimed: imports, encoder setup
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            engine.frames_to_animation(frames, args.fps, fmt)
            times.append(time.perf_counter() - started)
        seconds[fmt] = statistics.median(times)
        sizes[fmt] = len(data)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"animation.{fmt}").write_bytes(data)
    print(f"load average at the end {os.getloadavg()}")

    print(f"\n| format | bytes | KB | x MP4 | encode s (median of {REPEATS}) |\n|---|---:|---:|---:|---:|")
    for fmt in FORMATS:
        ratio = sizes[fmt] / sizes["mp4"]
        print(f"| {fmt} | {sizes[fmt]:,} | {sizes[fmt] / 1024:.0f} | {ratio:.1f} | {seconds[fmt]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
