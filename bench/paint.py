"""Paint-to-image on real photos: a painting made from each photo, rendered at stages 1, 2 and 3.

    python bench/paint.py /work/shared/images/generation/colusseum.png \\
        /work/shared/images/generation/marinabaysands.jpg --preset quick --model-dir runs \\
        --out docs/results/paint_quick.jpg

Models are cached: MODEL_DIR/<photo stem>/model.safetensors is loaded when it exists (what
`python -m engine train PHOTO --out MODEL_DIR/<stem> --preset quick` writes) and trained there otherwise.

The painting: the photo mirrored left-right (another layout than the one the model learned), blurred to an
eighth of its size and posterized to the model's 5 k-means colours: flat patches of the photo's colours, what
someone painting the scene with its palette would make. Each is rendered with quantize=True and the engine's
default noise, seed 0. quantize snaps to the palette of the stage painted at: a no-op at stage 1 (the painting
is in stage 1's palette), not at stages 2 and 3, whose palettes are their own images' k-means colours (on the
colusseum quick model every pixel moves, by up to 0.04 at stage 2 and 0.09 at stage 3 on the [-1, 1] scale).

Per photo and stage:
  layout     correlation of the result's 8x10 low-pass with the painting's (1: the painting's layout)
  photo      the same with the training image (the mirrored layout should win)
  texture    finest-scale energy (mean squared difference to a 3x3 box blur) of the result over the photo's
  vs input   the same over that of the painting as it entered the model (resized to stage k-1, upsampled)
  ms         one paint_to_image call (n=1), median of 5
With --out: a JPEG, one row per photo: painting | stage 1 | stage 2 | stage 3 | training image, each
enlarged 4x (nearest neighbour: the model's own pixels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import device_name, print_table

import engine
from engine.image import to_pil
from engine.paint import model_palette, painting_input, quantize_to_palette

STAGES = (1, 2, 3)
ENLARGE = 4


def load_or_train(photo: Path, preset: str, model_dir: Path, device: str) -> engine.TrainedModel:
    path = model_dir / photo.stem / "model.safetensors"
    if path.exists():
        return engine.checkpoint.from_bytes(path.read_bytes(), device=device)
    started = time.monotonic()
    image = engine.load_image(photo.read_bytes())
    model = engine.train(
        image, engine.TrainConfig.preset(preset), device=device, rng=engine.make_rng(0, device)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(engine.checkpoint.to_bytes(model))
    print(f"trained {photo.name} in {time.monotonic() - started:.0f} s", flush=True)
    return model


def make_painting(model: engine.TrainedModel) -> torch.Tensor:
    """The photo mirrored, blurred (an eighth of its size, back up) and posterized to its palette:
    [1, 3, H, W] at the model's top size."""
    photo = model.reals[-1]
    height, width = photo.shape[-2:]
    small = F.interpolate(torch.flip(photo, dims=[3]), size=(height // 8, width // 8), mode="area")
    blurred = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    return quantize_to_palette(blurred, model_palette(model, 1))


def low_pass(image: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(image, (8, 10))


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


def fine_energy(image: torch.Tensor) -> float:
    blurred = F.avg_pool2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return float(((image - blurred) ** 2).mean())


def timed_ms(model: engine.TrainedModel, painting: torch.Tensor, stage: int) -> float:
    times = []
    for seed in range(5):
        started = time.perf_counter()
        engine.paint_to_image(
            model, painting, stage=stage, quantize=True, rng=engine.make_rng(seed, model.device)
        )
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--preset", default="quick", choices=engine.PRESETS)
    parser.add_argument("--model-dir", type=Path, default=Path("runs"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="the picture (JPEG)")
    args = parser.parse_args()
    print(f"load average at the start {os.getloadavg()}", flush=True)  # the timings are only as quiet as this
    rows, strips = [], []
    for photo in args.photos:
        model = load_or_train(photo, args.preset, args.model_dir, args.device)
        painting = make_painting(model).to(args.device)
        real = model.reals[-1]
        top = model.stage_shapes[-1]
        strip = [painting]
        for stage in STAGES:
            out = engine.paint_to_image(
                model, painting, stage=stage, quantize=True, rng=engine.make_rng(0, args.device)
            )
            entered = F.interpolate(painting_input(model, painting, stage), size=top, mode="bicubic")
            rows.append(
                [
                    f"{photo.stem} ({top[1]}x{top[0]})",
                    stage,
                    f"{correlation(low_pass(out), low_pass(painting)):.2f}",
                    f"{correlation(low_pass(out), low_pass(real)):.2f}",
                    f"{fine_energy(out) / fine_energy(real):.2f}",
                    f"{fine_energy(out) / fine_energy(entered):.1f}",
                    f"{timed_ms(model, painting, stage):.1f}",
                ]
            )
            strip.append(out)
        strip.append(real)
        strips.append(torch.cat([F.pad(s, (1, 1, 1, 1), value=1.0) for s in strip], dim=3).cpu())
    print(f"device {device_name(args.device)}, load average at the end {os.getloadavg()}")
    print_table(["photo", "stage", "layout", "photo", "texture", "vs input", "ms"], rows)
    if args.out:
        width = max(s.shape[3] for s in strips)
        padded = [F.pad(s, (0, width - s.shape[3], 0, 0), value=1.0) for s in strips]
        picture = F.interpolate(torch.cat(padded, dim=2), scale_factor=ENLARGE, mode="nearest")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        to_pil(picture[0]).save(args.out, quality=92)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
