"""`python -m engine train|sample|animate|harmonize|paint|train-sr|super-resolve`: the engine without the service.

A model directory holds `model.safetensors` (the checkpoint), `stages/{k}.safetensors` (snapshots a
crashed run resumes from with --resume), `real.png` and `reconstruction.png`; `train-sr` (or `train --sr`)
adds `sr_head.safetensors`, the super-resolution head.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import cast

import torch

from engine import checkpoint
from engine.harmonization import COMPOSITES, DEFAULT_COMPOSITE, fine_tune, harmonize
from engine.image import ANIMATION_FORMATS, frames_to_animation, grid, load_image, to_pil, to_png_bytes
from engine.model import TrainedModel
from engine.noise import make_rng
from engine.paint import paint_to_image
from engine.sampling import animate, reconstruct, sample
from engine.spec.config import MODES, PRESETS, TrainConfig
from engine.spec.srconfig import SRPreset
from engine.spec.srmath import SR_FACTOR_DEFAULT, sr_schedule
from engine.sr import SR_PRESETS, SRConfig, super_resolve, train_sr_head
from engine.training import Progress, train

CHECKPOINT = "model.safetensors"
SR_HEAD = "sr_head.safetensors"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class ProgressBar:
    """One line on stderr, redrawn at most ten times a second."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr  # looked up now, not at import (redirections, capture)
        self.last_draw = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        final = progress.iteration == progress.iters_per_stage
        if now - self.last_draw < 0.1 and not final:
            return
        self.last_draw = now
        width = 30
        filled = int(width * progress.fraction_done)
        eta = f"{progress.eta_s:5.0f}s" if progress.eta_s is not None else "   ?s"
        losses = " ".join(f"{k}={v:.3f}" for k, v in progress.losses.items())
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] stage {progress.stage + 1}/{progress.num_stages} "
            f"iter {progress.iteration:4d}/{progress.iters_per_stage} eta {eta} {losses}   "
        )
        if final:
            self.stream.write(f"\n  stage {progress.stage} done at {progress.elapsed_s:.1f}s\n")
        self.stream.flush()


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {
        name: value
        for name, value in (
            ("train_stages", args.stages),
            ("iters_per_stage", args.iters),
            ("max_size", args.max_size),
            ("min_size", args.min_size),
            ("lr_scale", args.lr_scale),
        )
        if value is not None
    }
    return TrainConfig.requested(args.preset, args.mode, **overrides)


def command_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    created = not out.exists()
    try:
        return _train_into(out, args)
    except BaseException:
        if created:
            _remove_empty(out)  # a failed start leaves no empty folder behind (snapshots are kept)
        raise


def _remove_empty(out: Path) -> None:
    for folder in (out / "stages", out):
        with contextlib.suppress(OSError):  # not empty (a stage snapshot to resume from) or already gone
            folder.rmdir()


def _train_into(out: Path, args: argparse.Namespace) -> int:
    cfg = _config_from_args(args)
    image = load_image(Path(args.image).read_bytes())
    (out / "stages").mkdir(parents=True, exist_ok=True)
    device = args.device or default_device()
    if cfg.label == "quick":
        print(
            f"quick preset: max_size={cfg.max_size}, {cfg.train_stages} stages x {cfg.iters_per_stage} iterations, "
            f"{cfg.channels} channels (the paper: 250 px, 6 x 2000, 64): a fast preview, not the paper's quality",
            file=sys.stderr,
        )
    resume = None
    if args.resume:
        snapshots = sorted((out / "stages").glob("*.safetensors"), key=lambda p: int(p.stem))
        if snapshots:
            resume = checkpoint.from_bytes(snapshots[-1].read_bytes(), device)
            print(f"resuming after stage {resume.stages_done - 1} from {snapshots[-1]}", file=sys.stderr)

    def save_stage(model: TrainedModel) -> None:
        (out / "stages" / f"{model.stages_done - 1}.safetensors").write_bytes(checkpoint.to_bytes(model))

    print(f"training {args.image} on {device}: {cfg}", file=sys.stderr)
    bar = ProgressBar()
    # at once, not after the first reported iterations (minutes into a paper-preset stage on a CPU)
    bar(Progress(resume.stages_done if resume else 0, cfg.train_stages, 0, cfg.iters_per_stage))
    started = time.monotonic()
    model = train(
        image,
        cfg,
        device=device,
        rng=make_rng(args.seed, device),
        on_progress=bar,
        on_stage_done=save_stage,
        resume=resume,
    )
    (out / CHECKPOINT).write_bytes(checkpoint.to_bytes(model))
    (out / "real.png").write_bytes(to_png_bytes(model.reals[-1]))
    (out / "reconstruction.png").write_bytes(to_png_bytes(reconstruct(model)))
    print(f"trained in {time.monotonic() - started:.1f}s; wrote {out / CHECKPOINT}", file=sys.stderr)
    if args.sr:
        _train_and_store_head(model, out, args.sr_factor, args.sr_preset, args.sr_iters, args.seed + 1)
    return 0


def _sr_config(model: TrainedModel, factor: float, preset: str | None, iterations: int | None) -> SRConfig:
    # by default the head's preset follows the model's (a quick model gets a quick head)
    name = preset or (model.config.label if model.config.label in SR_PRESETS else "paper")
    overrides = {"iterations": iterations} if iterations is not None else {}
    return SRConfig.preset(cast(SRPreset, name), sr_train=factor, **overrides)


def _train_and_store_head(
    model: TrainedModel, out: Path, factor: float, preset: str | None, iterations: int | None, seed: int
) -> None:
    cfg = _sr_config(model, factor, preset, iterations)
    passes, step, _ = sr_schedule(factor)
    print(
        f"training the SR head for x{factor:g} ({passes} passes of x{step:.4f}): "
        f"{cfg.iterations} iterations, {cfg.channels} channels",
        file=sys.stderr,
    )
    started = time.monotonic()
    head = train_sr_head(model, cfg, rng=make_rng(seed, model.device), on_progress=ProgressBar())
    (out / SR_HEAD).write_bytes(checkpoint.sr_head_to_bytes(head))
    print(f"SR head trained in {time.monotonic() - started:.1f}s; wrote {out / SR_HEAD}", file=sys.stderr)


def _load_model(directory: str, device: str | None) -> TrainedModel:
    return checkpoint.from_bytes((Path(directory) / CHECKPOINT).read_bytes(), device or default_device())


def _scale_for(model: TrainedModel, args: argparse.Namespace) -> tuple[float, float]:
    if not args.size:
        return (args.scale_h, args.scale_w)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError as error:
        raise ValueError(f"--size must look like 320x200, not {args.size!r}") from error
    top_h, top_w = model.stage_shapes[-1]
    # int(size * scale) truncates: nudge up so the top stage lands on the requested size exactly
    return ((height + 0.5) / top_h, (width + 0.5) / top_w)


def command_sample(args: argparse.Namespace) -> int:
    model = _load_model(args.model_dir, args.device)
    images = sample(
        model,
        args.n,
        rng=make_rng(args.seed, model.device),
        scale=_scale_for(model, args),
        start_stage=args.start_stage,
    )
    out = Path(args.out or Path(args.model_dir) / "samples")
    out.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        (out / f"{index:03d}.png").write_bytes(to_png_bytes(image))
    to_pil(grid(images, columns=min(4, args.n))).save(out / "grid.png")
    print(
        f"wrote {args.n} samples of {images.shape[3]}x{images.shape[2]} and grid.png to {out}",
        file=sys.stderr,
    )
    return 0


def command_animate(args: argparse.Namespace) -> int:
    model = _load_model(args.model_dir, args.device)
    frames = animate(
        model,
        args.frames,
        rng=make_rng(args.seed, model.device),
        alpha=args.alpha,
        beta=args.beta,
        start_stage=args.start_stage,
    )
    Path(args.out).write_bytes(frames_to_animation(frames, args.fps, args.format or _format_of(args.out)))
    print(f"wrote {args.frames} frames to {args.out}", file=sys.stderr)
    return 0


def _format_of(out: str) -> str:
    """The animation format an output name asks for: walk.mp4 -> mp4; anything unknown -> gif."""
    suffix = Path(out).suffix.lower().lstrip(".")
    return suffix if suffix in ANIMATION_FORMATS else "gif"


def command_harmonize(args: argparse.Namespace) -> int:
    model = _load_model(args.model_dir, args.device)
    naive = load_image(Path(args.naive).read_bytes())
    mask = load_image(Path(args.mask).read_bytes())
    rng = make_rng(args.seed, model.device)
    if args.fine_tune:
        print(
            f"fine-tuning the top stage on {args.naive} for {args.fine_tune_iters} iterations",
            file=sys.stderr,
        )
        model = fine_tune(model, naive, args.fine_tune_iters, rng=rng, on_progress=ProgressBar())
        tuned = Path(args.model_dir) / "fine_tuned.safetensors"
        tuned.write_bytes(checkpoint.to_bytes(model))
        print(f"wrote {tuned}", file=sys.stderr)
    out = harmonize(model, naive, mask, stage=args.stage, rng=rng, composite=args.composite)
    Path(args.out).write_bytes(to_png_bytes(out))
    print(f"wrote {args.out} ({out.shape[3]}x{out.shape[2]})", file=sys.stderr)
    return 0


def command_paint(args: argparse.Namespace) -> int:
    model = _load_model(args.model_dir, args.device)
    painting = load_image(Path(args.painting).read_bytes())
    images = paint_to_image(
        model,
        painting,
        stage=args.stage,
        quantize=args.quantize,
        n=args.n,
        rng=make_rng(args.seed, model.device),
    )
    out = Path(args.out or Path(args.model_dir) / "painted.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out] if args.n == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(args.n)]
    for path, image in zip(paths, images, strict=True):
        path.write_bytes(to_png_bytes(image))
    print(
        f"painted at stage {args.stage}{' (quantized)' if args.quantize else ''}: "
        f"{images.shape[3]}x{images.shape[2]}; wrote {', '.join(str(p) for p in paths)}",
        file=sys.stderr,
    )
    return 0


def command_train_sr(args: argparse.Namespace) -> int:
    model = _load_model(args.model_dir, args.device)
    _train_and_store_head(model, Path(args.model_dir), args.factor, args.preset, args.iters, args.seed)
    return 0


def command_super_resolve(args: argparse.Namespace) -> int:
    model = _load_model(args.model_dir, args.device)
    head_path = Path(args.model_dir) / SR_HEAD
    if not head_path.exists():
        raise ValueError(f"{args.model_dir} has no SR head: run `python -m engine train-sr {args.model_dir}`")
    head = checkpoint.sr_head_from_bytes(head_path.read_bytes(), model.device)
    source = load_image(Path(args.source).read_bytes()) if args.source else None
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        images = super_resolve(
            model,
            head,
            args.factor,
            args.n,
            rng=make_rng(args.seed, model.device),
            noise_scale=args.noise_scale,
            source=source,
        )
    for warning in caught:  # a step far from the trained one: one plain line, not a traceback location
        print(f"warning: {warning.message}", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out] if args.n == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(args.n)]
    for path, image in zip(paths, images, strict=True):
        path.write_bytes(to_png_bytes(image))
    start_h, start_w = (source if source is not None else model.reals[-1]).shape[-2:]
    print(
        f"enlarged {start_w}x{start_h} to {images.shape[3]}x{images.shape[2]} "
        f"in {time.monotonic() - started:.2f}s; wrote {', '.join(str(p) for p in paths)}",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    commands = parser.add_subparsers(dest="command", required=True)

    trainer = commands.add_parser("train", help="train a model on one image")
    trainer.add_argument("image")
    trainer.add_argument("--out", required=True, help="model directory to write")
    trainer.add_argument("--preset", choices=PRESETS, default="paper")
    trainer.add_argument("--mode", choices=MODES, default="generation")
    trainer.add_argument("--stages", type=int, help="train_stages (default: the preset's)")
    trainer.add_argument("--iters", type=int, help="iterations per stage (default: the preset's)")
    trainer.add_argument("--max-size", type=int)
    trainer.add_argument("--min-size", type=int)
    trainer.add_argument("--lr-scale", type=float)
    trainer.add_argument("--seed", type=int, default=0)
    trainer.add_argument("--resume", action="store_true", help="continue from the newest stage snapshot")
    trainer.add_argument("--sr", action="store_true", help="then train a super-resolution head (train-sr)")
    trainer.add_argument("--sr-factor", type=float, default=SR_FACTOR_DEFAULT, help="the head's factor")
    trainer.add_argument("--sr-preset", choices=SR_PRESETS, help="the head's preset (default: the model's)")
    trainer.add_argument("--sr-iters", type=int, help="the head's iterations (default: the preset's)")
    trainer.set_defaults(run=command_train)

    sr_trainer = commands.add_parser("train-sr", help="train a super-resolution head for a trained model")
    sr_trainer.add_argument("model_dir")
    sr_trainer.add_argument("--factor", type=float, default=SR_FACTOR_DEFAULT, help="trained factor (x4)")
    sr_trainer.add_argument("--preset", choices=SR_PRESETS, help="default: the model's preset, else paper")
    sr_trainer.add_argument("--iters", type=int, help="iterations (default: the preset's)")
    sr_trainer.add_argument("--seed", type=int, default=0)
    sr_trainer.set_defaults(run=command_train_sr)

    resolver = commands.add_parser("super-resolve", help="enlarge the model's image with its SR head")
    resolver.add_argument("model_dir")
    resolver.add_argument("--factor", type=float, help="1 < factor <= 8 (default: the head's)")
    resolver.add_argument(
        "--out", required=True, help="PNG to write (with -n > 1: OUT_0.png, OUT_1.png, ...)"
    )
    resolver.add_argument("-n", "--n", type=int, default=1, help="independent noise draws")
    resolver.add_argument("--noise-scale", type=float, default=1.0, help="0: deterministic")
    resolver.add_argument("--source", help="enlarge this image (e.g. a sample) instead of the training image")
    resolver.add_argument("--seed", type=int, default=0)
    resolver.set_defaults(run=command_super_resolve)

    sampler = commands.add_parser("sample", help="draw random samples from a trained model")
    sampler.add_argument("model_dir")
    sampler.add_argument("-n", type=int, default=16)
    sampler.add_argument("--size", help="WxH of the output (default: the training size)")
    sampler.add_argument("--scale-h", type=float, default=1.0)
    sampler.add_argument("--scale-w", type=float, default=1.0)
    sampler.add_argument("--start-stage", type=int, default=0)
    sampler.add_argument("--seed", type=int, default=0)
    sampler.add_argument("--out", help="folder for the PNGs (default: MODEL_DIR/samples)")
    sampler.set_defaults(run=command_sample)

    animator = commands.add_parser("animate", help="render a looping GIF, WebP or MP4 of a random walk")
    animator.add_argument("model_dir")
    animator.add_argument("--out", required=True, help="walk.gif, walk.webp or walk.mp4")
    animator.add_argument(
        "--format",
        choices=ANIMATION_FORMATS,
        help="gif, webp or mp4 (default: from --out's suffix, else gif)",
    )
    animator.add_argument("--frames", type=int, default=100)
    animator.add_argument("--fps", type=float, default=10.0)
    animator.add_argument("--alpha", type=float, default=0.1)
    animator.add_argument("--beta", type=float, default=0.9)
    animator.add_argument("--start-stage", type=int, default=0)
    animator.add_argument("--seed", type=int, default=0)
    animator.set_defaults(run=command_animate)

    harmonizer = commands.add_parser("harmonize", help="blend a pasted object into the model's scene")
    harmonizer.add_argument("model_dir")
    harmonizer.add_argument("--naive", required=True, help="the cut-and-paste image")
    harmonizer.add_argument("--mask", required=True, help="white where the object was pasted, same size")
    harmonizer.add_argument("--out", required=True)
    harmonizer.add_argument("--stage", type=int, default=0, help="injection stage (0: the original's)")
    harmonizer.add_argument(
        "--fine-tune", action="store_true", help="first adapt the model to the naive image"
    )
    harmonizer.add_argument("--fine-tune-iters", type=int, default=500)
    harmonizer.add_argument(
        "--composite",
        choices=COMPOSITES,
        default=DEFAULT_COMPOSITE,
        help="detail: the model's colours with the naive image's fine detail at full resolution; "
        "render: the model's own rendering, upsampled (soft when the model is smaller than the image)",
    )
    harmonizer.add_argument("--seed", type=int, default=0)
    harmonizer.set_defaults(run=command_harmonize)

    painter = commands.add_parser("paint", help="turn a rough painting of the scene into an image (SinGAN)")
    painter.add_argument("model_dir")
    painter.add_argument("--painting", required=True, help="PNG/JPEG/WebP, the training image's aspect ratio")
    painter.add_argument("--stage", type=int, default=1, help="injection stage, 1 .. last (default 1)")
    painter.add_argument(
        "--quantize", action="store_true", help="first snap its colours to the training image's palette"
    )
    painter.add_argument("-n", "--n", type=int, default=1, help="independent draws")
    painter.add_argument("--seed", type=int, default=0)
    painter.add_argument("--out", help="PNG to write (default MODEL_DIR/painted.png; -n > 1: OUT_0.png, ...)")
    painter.set_defaults(run=command_paint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
