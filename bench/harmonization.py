"""Harmonize pasted objects with every composite and measure detail kept and style taken.

    python bench/harmonization.py PAINTING NAIVE MASK [PAINTING NAIVE MASK ...] --preset quick
    python bench/harmonization.py --shared /work/shared/images/harmonization --preset quick --fine-tune \\
        --model-dir runs --out out/harmonization

--shared DIR takes every NAME.jpg that has a NAME_naive.jpg and a NAME_naive_mask.jpg next to it.
Models are cached: MODEL_DIR/<painting stem>/model.safetensors is loaded when it exists (what
`python -m engine train PAINTING --out MODEL_DIR/<stem> --mode harmonization` writes) and trained there
otherwise. --fine-tune adds rows for a model fine-tuned on the naive image (cached next to it).

Per image and composite, at the naive image's full resolution (engine/harmonization_metrics.py):
  detail kept   correlation of the Laplacian of L* of the result with that of the naive image, inside the
                mask (1.0 = all of the pasted object's fine structure is still there)
  Lab before    distance of the Lab colour statistics (mean and std of L*, a*, b*) inside the mask from
                those of the painting around it (a ring outside the mask, 10% of the longer side wide) in
                the naive image
  Lab after     the same distance for the result (lower: the object took the painting's colours), and
                that distance for the means only and for the stds only (colour vs contrast)
With --out: harmonization.json, every result as PNG, and grid.jpg (one row per image: painting, naive,
mask, then one column per composite and model), the picture in docs/results/harmonization_quick.jpg.

Measured with the second command above (quick models trained by `python -m engine train`, CPU, 1 thread):

    image                  composite          detail kept  Lab before  Lab after  after: means / stds
    pencil_tree (600x453)  render             0.375        71.6        19.9       18.9 / 6.3
    pencil_tree (600x453)  detail             0.968        71.6        22.8       21.5 / 7.5
    pencil_tree (600x453)  fine-tuned render  0.370        71.6        8.7        7.3 / 4.7
    pencil_tree (600x453)  fine-tuned detail  0.937        71.6        10.3       9.6 / 3.9
    scream (250x319)       render             0.627        31.1        16.6       13.9 / 9.0
    scream (250x319)       detail             0.994        31.1        17.3       14.1 / 10.0
    scream (250x319)       fine-tuned render  0.609        31.1        7.5        6.1 / 4.4
    scream (250x319)       fine-tuned detail  0.991        31.1        7.7        6.3 / 4.4

"detail" keeps 0.94-0.99 of the high-pass against 0.37-0.63 for "render" and moves the colours almost as
far (render's small edge in Lab is its blur: lower contrast, the painting smeared into the object's edge).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from common import device_name, print_table
from PIL import Image, ImageDraw

import engine
from engine import checkpoint
from engine.harmonization import COMPOSITES, DEFAULT_COMPOSITE, binary_mask
from engine.harmonization_metrics import colour_distance, colour_statistics, detail_kept, surrounding_ring
from engine.image import to_pil

CHECKPOINT = "model.safetensors"  # the CLI's name, so `python -m engine train --out` dirs can be reused
RING_FRACTION = 0.1  # width of the "painting around it" ring, as a fraction of the longer side
ROW_HEIGHT = 260  # px of one image row in grid.jpg
LABEL_HEIGHT = 16


@dataclass(frozen=True)
class Pair:
    name: str
    painting: Path
    naive: Path
    mask: Path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", type=Path, help="PAINTING NAIVE MASK, repeated")
    parser.add_argument(
        "--shared", type=Path, help="folder with NAME.jpg, NAME_naive.jpg, NAME_naive_mask.jpg"
    )
    parser.add_argument("--preset", choices=["paper", "quick"], default="quick")
    parser.add_argument("--mode", choices=["harmonization", "editing"], default="harmonization")
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["cpu", "cuda"], default=default_device)
    parser.add_argument("--model-dir", type=Path, default=Path("runs"), help="one model folder per painting")
    parser.add_argument("--fine-tune", action="store_true", help="also harmonize with a fine-tuned model")
    parser.add_argument("--fine-tune-iters", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="folder for harmonization.json, the PNGs and grid.jpg")
    return parser.parse_args(argv)


def find_pairs(args: argparse.Namespace) -> list[Pair]:
    if len(args.paths) % 3:
        raise SystemExit("give PAINTING NAIVE MASK triples")
    pairs = [
        Pair(painting.stem, painting, naive, mask)
        for painting, naive, mask in zip(args.paths[::3], args.paths[1::3], args.paths[2::3], strict=True)
    ]
    if args.shared is not None:
        for mask in sorted(args.shared.glob("*_naive_mask.jpg")):
            name = mask.name.removesuffix("_naive_mask.jpg")
            pairs.append(Pair(name, args.shared / f"{name}.jpg", args.shared / f"{name}_naive.jpg", mask))
    if not pairs:
        raise SystemExit("nothing to harmonize: give PAINTING NAIVE MASK or --shared DIR")
    return pairs


def load_or_train(painting: Path, args: argparse.Namespace) -> engine.TrainedModel:
    folder = args.model_dir / painting.stem
    if (folder / CHECKPOINT).is_file():
        model = checkpoint.from_bytes((folder / CHECKPOINT).read_bytes(), args.device)
        print(f"{painting.stem}: loaded {folder / CHECKPOINT} ({model.config.label or 'no label'})")
        return model
    cfg = engine.TrainConfig.preset(args.preset, mode=args.mode)
    started = time.perf_counter()
    model = engine.train(
        engine.load_image(painting.read_bytes()),
        cfg,
        device=args.device,
        rng=engine.make_rng(args.seed, args.device),
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CHECKPOINT).write_bytes(checkpoint.to_bytes(model))
    print(f"{painting.stem}: trained in {time.perf_counter() - started:.0f}s, wrote {folder / CHECKPOINT}")
    return model


def load_or_fine_tune(
    model: engine.TrainedModel, pair: Pair, naive: torch.Tensor, args: argparse.Namespace
) -> engine.TrainedModel:
    cached = (
        args.model_dir
        / pair.painting.stem
        / f"fine_tuned-{pair.naive.stem}-{args.fine_tune_iters}.safetensors"
    )
    if cached.is_file():
        return checkpoint.from_bytes(cached.read_bytes(), args.device)
    started = time.perf_counter()
    tuned = engine.fine_tune(model, naive, args.fine_tune_iters, rng=engine.make_rng(args.seed, args.device))
    cached.write_bytes(checkpoint.to_bytes(tuned))
    print(
        f"{pair.name}: fine-tuned {args.fine_tune_iters} iterations in {time.perf_counter() - started:.0f}s"
    )
    return tuned


def measure(pair: Pair, args: argparse.Namespace) -> dict[str, Any]:
    naive = engine.load_image(pair.naive.read_bytes())  # [1, 3, H, W] in [-1, 1]
    mask = engine.load_image(pair.mask.read_bytes())
    inside = binary_mask(mask, (naive.shape[2], naive.shape[3])).bool()  # [1, 1, H, W]
    ring = surrounding_ring(inside, max(1, round(RING_FRACTION * max(naive.shape[-2:]))))
    painting_stats = colour_statistics(naive, ring)
    before = colour_distance(colour_statistics(naive, inside), painting_stats)
    models = {"": load_or_train(pair.painting, args)}
    if args.fine_tune:
        models["fine-tuned "] = load_or_fine_tune(models[""], pair, naive, args)
    results = []
    in_order = sorted(COMPOSITES, key=lambda name: name == DEFAULT_COMPOSITE)  # the default last
    for prefix, model in models.items():
        for composite in in_order:
            out = engine.harmonize(model, naive, mask, rng=engine.make_rng(args.seed), composite=composite)
            after = colour_statistics(out, inside)
            results.append(
                {
                    "composite": prefix + composite,
                    "detail_kept": detail_kept(out, naive, inside),
                    "lab_after": colour_distance(after, painting_stats),
                    # which half of the distance is left: the colour (means) or the contrast (stds)
                    "lab_after_means": colour_distance(after[:3], painting_stats[:3]),
                    "lab_after_stds": colour_distance(after[3:], painting_stats[3:]),
                    "lab_stats_after": after.tolist(),
                    "_image": out,
                }
            )
    return {
        "name": pair.name,
        "naive_size": [int(naive.shape[3]), int(naive.shape[2])],
        "model_size": list(models[""].stage_shapes[-1][::-1]),
        "preset": models[""].config.label,
        "lab_before": before,
        "lab_stats_painting": painting_stats.tolist(),
        "lab_stats_naive": colour_statistics(naive, inside).tolist(),
        "results": results,
        "_row": [engine.load_image(pair.painting.read_bytes()), naive, mask, *(r["_image"] for r in results)],
    }


def table_rows(reports: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            f"{report['name']} ({report['naive_size'][0]}x{report['naive_size'][1]})",
            result["composite"],
            f"{result['detail_kept']:.3f}",
            f"{report['lab_before']:.1f}",
            f"{result['lab_after']:.1f}",
            f"{result['lab_after_means']:.1f} / {result['lab_after_stds']:.1f}",
        ]
        for report in reports
        for result in report["results"]
    ]


def picture_row(images: Sequence[torch.Tensor], labels: Sequence[str]) -> Image.Image:
    """One labelled row: every image scaled to ROW_HEIGHT, 4 px apart, on white."""
    tiles = []
    for image, label in zip(images, labels, strict=True):
        picture = to_pil(image)
        width = round(picture.width * ROW_HEIGHT / picture.height)
        tile = Image.new("RGB", (width, ROW_HEIGHT + LABEL_HEIGHT), "white")
        tile.paste(picture.resize((width, ROW_HEIGHT), Image.Resampling.LANCZOS), (0, LABEL_HEIGHT))
        ImageDraw.Draw(tile).text((2, 2), label, fill="black")
        tiles.append(tile)
    row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), "white")
    left = 0
    for tile in tiles:
        row.paste(tile, (left, 0))
        left += tile.width + 4
    return row


def write_outputs(reports: Sequence[dict[str, Any]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    public = [
        {k: v for k, v in report.items() if not k.startswith("_")}
        | {"results": [{k: v for k, v in r.items() if not k.startswith("_")} for r in report["results"]]}
        for report in reports
    ]
    (out / "harmonization.json").write_text(json.dumps(public, indent=2) + "\n")
    rows = []
    for report in reports:
        for result in report["results"]:
            name = result["composite"].replace(" ", "_")
            to_pil(result["_image"]).save(out / f"{report['name']}-{name}.png")
        labels = ["painting", "naive", "mask", *(r["composite"] for r in report["results"])]
        rows.append(picture_row(report["_row"], labels))
    grid = Image.new(
        "RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 4 * (len(rows) - 1)), "white"
    )
    top = 0
    for row in rows:
        grid.paste(row, (0, top))
        top += row.height + 4
    grid.save(out / "grid.jpg", quality=85, optimize=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    reports = [measure(pair, args) for pair in find_pairs(args)]
    print(
        f"\n{reports[0]['preset']} models on {device_name(args.device)}; Lab: distance to the painting around"
    )
    header = ["image", "composite", "detail kept", "Lab before", "Lab after", "after: means / stds"]
    print_table(header, table_rows(reports))
    if args.out is not None:
        write_outputs(reports, args.out)


if __name__ == "__main__":
    main()
