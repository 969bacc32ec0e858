"""Super-resolution against bicubic on real photographs (superres-spec.md §4.2, on the shared images).

    python bench/superres.py ../shared/images/generation --factor 4 --preset quick --out out/sr

For every image (files, or every image in a folder): HR = the image shrunk so its long side is at most
factor x the preset's max_size and cropped to a multiple of the factor; LR = HR shrunk by 1/factor
(MATLAB-style, 8-bit). A ConSinGAN model (the preset) and its SR head (the SR preset of the same name) are
trained on LR, which is the model's top image, and LR is enlarged back by the factor. Printed per image,
for bicubic (one MATLAB-style enlargement) and for ours: PSNR against HR (8-bit RGB, `factor` px shaved),
sharpness (mean absolute finite difference of the grey image; HR's for reference), and the shrink-back
PSNR (the result taken back down against LR).

No-reference score (NIQE): none is computed. The packages that provide one do not work here: pyiqa needs
torchvision (PyPI's 0.29 pulls torch 2.14, 0.28's compiled ops do not load beside the torch 2.13 CPU
wheel) and downloads NIQE's parameters from a model hub at run time; basicsr's sdist does not build against
current setuptools and imports torchvision; scikit-video's NIQE calls scipy.misc.imresize, removed from
SciPy in 2019. See docs/superres.md.

With --out DIR: after each image, DIR/<image>.json (its numbers) and DIR/<image>.png (bicubic | ours | HR);
at the end, the table and DIR/superres_<preset>.jpg (one row per image) cover every image in DIR, so runs
over parts of the set (in parallel, or after an interruption) into one DIR add up to the whole table.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from common import device_name, print_table, synchronize
from PIL import Image

import engine
from engine.image import to_pil
from engine.imresize import imresize, quantize
from engine.sr import quality

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
JPEG_QUALITY = 88


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "images", type=Path, nargs="*", help="image files or folders (none: print what --out holds)"
    )
    parser.add_argument("--factor", type=int, default=4, choices=range(2, 9), help="SR factor (integer)")
    parser.add_argument("--preset", choices=["paper", "quick"], default="quick")
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["cpu", "cuda"], default=default_device)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, help="override the model's iters_per_stage")
    parser.add_argument("--head-iters", type=int, help="override the head's iterations")
    parser.add_argument("--generator-steps", type=int, help="override the head's generator_steps")
    parser.add_argument("--adversarial-source", choices=["samples", "real"])
    parser.add_argument("--discriminator-init", choices=["model", "fresh"])
    parser.add_argument("--head-channels", type=int)
    parser.add_argument("--out", type=Path, help="folder for the per-image results and the picture")
    parser.add_argument("--model-cache", type=Path, help="folder to keep trained models in and reuse them")
    return parser.parse_args(argv)


def image_paths(inputs: Sequence[Path]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            paths.append(item)
    return paths


def high_resolution(image: torch.Tensor, factor: int, max_size: int) -> torch.Tensor:
    """The reference: shrunk so its LR version fits max_size (the model's top image is then LR itself),
    cropped to a multiple of the factor. [1, 3, H, W] -> [1, 3, H', W']."""
    longest = factor * max_size
    scale = longest / max(image.shape[-2:])
    if scale < 1:
        image = quantize(imresize(image, scale))
    return quality.crop_to_multiple(image, factor)


def head_config(args: argparse.Namespace) -> engine.SRConfig:
    overrides: dict[str, Any] = {"sr_train": float(args.factor)}
    for field, value in (
        ("iterations", args.head_iters),
        ("generator_steps", args.generator_steps),
        ("adversarial_source", args.adversarial_source),
        ("discriminator_init", args.discriminator_init),
        ("channels", args.head_channels),
    ):
        if value is not None:
            overrides[field] = value
    return engine.SRConfig.preset(args.preset, **overrides)


def trained_model(
    lr: torch.Tensor, cfg: engine.TrainConfig, path: Path, args: argparse.Namespace
) -> tuple[engine.TrainedModel, float]:
    """The ConSinGAN model of LR and its training time; with --model-cache, a model trained before with the
    same image, preset, factor, iterations and seed is loaded instead (time 0), so head configurations can
    be compared on the same models."""
    cached = None
    if args.model_cache is not None:
        key = f"{path.stem}_{args.preset}_x{args.factor}_it{cfg.iters_per_stage}_seed{args.seed}"
        cached = args.model_cache / f"{key}.safetensors"
        if cached.exists():
            return engine.checkpoint.from_bytes(cached.read_bytes(), args.device), 0.0
    started = time.perf_counter()
    model = engine.train(lr, cfg, device=args.device, rng=engine.make_rng(args.seed, args.device))
    synchronize(args.device)
    elapsed = time.perf_counter() - started
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(engine.checkpoint.to_bytes(model))
    return model, elapsed


def run_one(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    overrides = {"iters_per_stage": args.iters} if args.iters else {}
    cfg = engine.TrainConfig.preset(args.preset, mode="generation", **overrides)
    hr = high_resolution(engine.load_image(path.read_bytes()), args.factor, cfg.max_size)  # [1, 3, H, W]
    lr = quality.downscale(hr, args.factor)  # [1, 3, H/f, W/f]
    device = args.device

    model, model_s = trained_model(lr, cfg, path, args)
    if tuple(model.reals[-1].shape) != tuple(lr.shape):
        raise RuntimeError(f"the model's top image is {list(model.reals[-1].shape)}, not LR {list(lr.shape)}")

    head_cfg = head_config(args)
    started = time.perf_counter()
    head = engine.train_sr_head(model, head_cfg, rng=engine.make_rng(args.seed + 1, device))
    synchronize(device)
    head_s = time.perf_counter() - started

    started = time.perf_counter()
    ours = engine.super_resolve(model, head, args.factor, rng=engine.make_rng(args.seed + 2, device)).cpu()
    synchronize(device)
    sr_s = time.perf_counter() - started
    bicubic = quality.bicubic(lr, args.factor)
    shave = args.factor
    return {
        "image": path.name,
        "preset": args.preset,
        "factor": args.factor,
        "lr": list(lr.shape[-2:]),
        "hr": list(hr.shape[-2:]),
        "model_s": model_s,
        "head_s": head_s,
        "sr_s": sr_s,
        "noise_amp": head.noise_amp,
        "head_config": head_cfg.to_dict(),
        "psnr": {"bicubic": quality.psnr(bicubic, hr, shave), "ours": quality.psnr(ours, hr, shave)},
        "sharpness": {
            "bicubic": quality.sharpness(bicubic),
            "ours": quality.sharpness(ours),
            "hr": quality.sharpness(hr),
        },
        "shrink_back_psnr": {
            "bicubic": quality.shrink_back_psnr(bicubic, lr, args.factor),
            "ours": quality.shrink_back_psnr(ours, lr, args.factor),
        },
        "_row": torch.cat([bicubic, ours, hr]),  # [3, 3, H, W]
    }


def print_results(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"x{args.factor}, preset {args.preset}, device {device_name(args.device)}; NIQE: not available (see --help)"
    )
    header = [
        "image",
        "LR -> HR",
        "train s (model+head)",
        "PSNR bic",
        "PSNR ours",
        "sharp bic",
        "sharp ours",
        "sharp HR",
        "shrink-back bic",
        "shrink-back ours",
    ]
    rows = []
    for r in results:
        rows.append(
            [
                r["image"],
                f"{r['lr'][1]}x{r['lr'][0]} -> {r['hr'][1]}x{r['hr'][0]}",
                f"{r['model_s']:.0f}+{r['head_s']:.0f}",
                f"{r['psnr']['bicubic']:.2f}",
                f"{r['psnr']['ours']:.2f}",
                f"{r['sharpness']['bicubic']:.4f}",
                f"{r['sharpness']['ours']:.4f}",
                f"{r['sharpness']['hr']:.4f}",
                f"{r['shrink_back_psnr']['bicubic']:.2f}",
                f"{r['shrink_back_psnr']['ours']:.2f}",
            ]
        )
    if len(results) > 1:
        n = len(results)
        rows.append(
            ["mean", "", ""]
            + [f"{sum(r['psnr'][k] for r in results) / n:.2f}" for k in ("bicubic", "ours")]
            + [f"{sum(r['sharpness'][k] for r in results) / n:.4f}" for k in ("bicubic", "ours", "hr")]
            + [f"{sum(r['shrink_back_psnr'][k] for r in results) / n:.2f}" for k in ("bicubic", "ours")]
        )
    print_table(header, rows)


def save_result(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(result["image"]).stem
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    (out / f"{stem}.json").write_text(json.dumps(public, indent=2) + "\n")
    to_pil(engine.grid(result["_row"], columns=3, gap=4)).save(out / f"{stem}.png")


def collect(out: Path, preset: str) -> list[dict[str, Any]]:
    """Every image's result saved in `out`, with its side-by-side row; writes the combined picture."""
    results = []
    for record in sorted(out.glob("*.json")):
        result = json.loads(record.read_text())
        if result.get("preset") != preset:
            continue
        result["_picture"] = Image.open(record.with_suffix(".png")).convert("RGB")
        results.append(result)
    pictures = [r["_picture"] for r in results]
    if pictures:
        stack_rows(pictures).save(out / f"superres_{preset}.jpg", quality=JPEG_QUALITY)
    return results


def stack_rows(pictures: list[Image.Image], gap: int = 4) -> Image.Image:
    width = max(p.width for p in pictures)
    canvas = Image.new("RGB", (width, sum(p.height for p in pictures) + gap * (len(pictures) - 1)), "white")
    top = 0
    for picture in pictures:
        canvas.paste(picture, (0, top))
        top += picture.height + gap
    return canvas


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.images and args.out is None:
        raise SystemExit("give images to run, or --out DIR to print the results it holds")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    results = []
    for path in image_paths(args.images):
        try:
            result = run_one(path, args)
        except ValueError as error:  # e.g. a panorama whose LR is too thin for the preset's pyramid
            print(f"{path.name}: skipped: {error}", flush=True)
            continue
        print(
            f"{path.name}: PSNR bicubic {result['psnr']['bicubic']:.2f} ours {result['psnr']['ours']:.2f}; "
            f"trained in {result['model_s']:.0f}+{result['head_s']:.0f}s",
            flush=True,
        )
        if args.out is not None:
            save_result(result, args.out)
        results.append(result)
    if args.out is not None:
        results = collect(args.out, args.preset)
    print_results(results, args)


if __name__ == "__main__":
    main()
