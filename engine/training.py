"""ConSinGAN training: the stages one after another (spec §3), each run by the reference runner (fp32,
eager) or the fast one (`engine.fast`: the same iteration replayed as a CUDA graph). The math of a stage
is in `engine.steps`.

Decisions on the original's quirks:
- `generator_steps = 3` calls `optimizer.step()` three times on ONE gradient, as the original does: that is
  what produced the paper's results. Set `generator_steps=1` for the textbook update.
- The last critic step's gradient penalty uses a detached fake. The original lets it flow into the
  generator and then zeroes those gradients before the generator step, so this changes nothing but time.
- Frozen parts (bodies below `train_depth`, the head from stage `train_depth` on, the critic during the
  generator step) have `requires_grad=False`, so no gradient is computed for them at all. The original
  computes and discards some of them; the updates are the same.
- The original renders and writes 25 samples every 500 iterations; the engine writes nothing. Progress
  goes to `on_progress`, stage snapshots to `on_stage_done`.
- The MultiStep decay happens after `round(lr_decay_at * iters_per_stage)` iterations (the original's float
  milestone never fires when 0.8 * iters is not a whole number).
- All randomness comes from `rng`; cuDNN's nondeterministic kernels are left to the caller's settings.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from engine.fast import FastOptions, FastStage, backend_flags, optimizer_options
from engine.model import TrainedModel
from engine.networks import Discriminator, Generator
from engine.noise import make_rng
from engine.pyramid import build_pyramid
from engine.spec.config import TrainConfig
from engine.steps import StageSetup, begin_stage, train_iteration

TrainingPath = Literal["auto", "reference", "fast"]


class TrainingCanceled(Exception):
    """Raised by `train` when `should_stop()` returned True; the last `on_stage_done` snapshot stands."""


@dataclass(frozen=True)
class Progress:
    stage: int  # 0-based stage being trained
    num_stages: int
    iteration: int  # 1-based iteration within the stage
    iters_per_stage: int
    losses: dict[str, float] = field(default_factory=dict)  # critic, adversarial, reconstruction
    elapsed_s: float = 0.0  # since this call of `train` started
    fraction_done: float = 0.0  # of the whole training, weighting stages by their expected cost
    eta_s: float | None = None  # seconds left, extrapolated from this call's pace


ProgressCallback = Callable[[Progress], None]
StopCheck = Callable[[], bool]
StageCallback = Callable[[TrainedModel], None]


def train(
    image: torch.Tensor,
    cfg: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    rng: torch.Generator | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_stage_done: StageCallback | None = None,
    resume: TrainedModel | None = None,
    progress_every: int = 10,
    path: TrainingPath = "auto",
    fast_options: FastOptions | None = None,
) -> TrainedModel:
    """Train a ConSinGAN on `image` ([1, 3, H, W] in [-1, 1], any size; the pyramid resizes it).

    `rng` must live on `device` (see `make_rng`); `resume` continues a snapshot from `on_stage_done`.
    `path`: "reference" (fp32, eager), "fast" (engine.fast), "auto" = fast on CUDA, reference elsewhere.
    Returns the complete model. Raises `TrainingCanceled` when `should_stop()` turns True.
    """
    device = torch.device(device)
    rng = rng if rng is not None else make_rng(0, device)
    if rng.device.type != device.type:
        raise ValueError(
            f"rng lives on {rng.device} but training runs on {device}: use make_rng(seed, device)"
        )
    fast = path == "fast" or (path == "auto" and device.type == "cuda")
    options = fast_options or FastOptions()
    _check_image(image)
    model = _start_or_resume(image, cfg, device, resume, _cpu_rng(rng))
    clock = _Clock(model.stage_shapes, cfg, model.stages_done)
    adam_options = optimizer_options(device, options) if fast else {}
    flags = backend_flags(device, options) if fast else contextlib.nullcontext()
    with flags:
        for stage in range(model.stages_done, cfg.train_stages):
            setup = begin_stage(model, stage, rng, adam_options)
            runner = FastStage(model, setup, rng, options) if fast else ReferenceStage(model, setup, rng)
            for iteration in range(1, cfg.iters_per_stage + 1):
                if should_stop is not None and should_stop():
                    raise TrainingCanceled(f"stopped at stage {stage}, iteration {iteration}")
                runner.step()
                last = iteration == cfg.iters_per_stage
                if on_progress is not None and (iteration % progress_every == 0 or last):
                    on_progress(clock.progress(stage, iteration, runner.report(final=last)))
            if on_stage_done is not None:
                on_stage_done(model)
    model.generator.eval()
    return model


class ReferenceStage:
    """The reference path's runner: one eager iteration per step, losses read synchronously."""

    def __init__(self, model: TrainedModel, setup: StageSetup, rng: torch.Generator) -> None:
        self.model, self.setup, self.rng = model, setup, rng
        self.losses: dict[str, torch.Tensor] = {}

    def step(self, stage0_input: torch.Tensor | None = None) -> None:
        self.losses = train_iteration(self.model, self.setup, self.rng, stage0_input)

    def report(self, final: bool = False) -> dict[str, float]:
        return {name: float(value) for name, value in self.losses.items()}


def _check_image(image: torch.Tensor) -> None:
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"image must be [1, 3, H, W], got {list(image.shape)}")
    if not torch.isfinite(image).all() or image.min() < -1.0001 or image.max() > 1.0001:
        raise ValueError("image values must be finite and in [-1, 1]")


def _cpu_rng(rng: torch.Generator) -> torch.Generator:
    """A CPU generator seeded from `rng`, for weight initialisation (modules are built on the CPU)."""
    seed = int(torch.randint(0, 2**62, (), generator=rng, device=rng.device))
    return torch.Generator().manual_seed(seed)


def _start_or_resume(
    image: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    resume: TrainedModel | None,
    init_rng: torch.Generator,
) -> TrainedModel:
    reals = [r.to(device) for r in build_pyramid(image.detach().float().cpu(), cfg)]
    if resume is None:
        return TrainedModel(
            config=cfg,
            generator=Generator(cfg, init_rng).to(device),
            discriminator=Discriminator(cfg, init_rng).to(device),
            reals=reals,
            fixed_noise=[],
            noise_amp=[],
        )
    if resume.config.replace(label="") != cfg.replace(label=""):
        raise ValueError("resume snapshot was trained with a different config")
    if resume.stage_shapes != [(int(r.shape[2]), int(r.shape[3])) for r in reals]:
        raise ValueError("resume snapshot was trained on an image of another size")
    return resume.to(device)


class _Clock:
    """Elapsed time, fraction done and ETA. A stage's cost is taken as 1 + 2 * (its pixels / the top's),
    close to the per-stage times measured on the original."""

    def __init__(self, shapes: list[tuple[int, int]], cfg: TrainConfig, first_stage: int) -> None:
        top_pixels = shapes[-1][0] * shapes[-1][1]
        self.weights = [1 + 2 * h * w / top_pixels for h, w in shapes]
        self.total = sum(self.weights)
        self.cfg = cfg
        self.start_fraction = sum(self.weights[:first_stage]) / self.total
        self.started = time.monotonic()

    def progress(self, stage: int, iteration: int, losses: dict[str, float]) -> Progress:
        done = sum(self.weights[:stage]) + self.weights[stage] * iteration / self.cfg.iters_per_stage
        fraction = done / self.total
        elapsed = time.monotonic() - self.started
        covered = fraction - self.start_fraction
        eta = elapsed * (1 - fraction) / covered if covered > 0 else None
        return Progress(
            stage=stage,
            num_stages=self.cfg.train_stages,
            iteration=iteration,
            iters_per_stage=self.cfg.iters_per_stage,
            losses=losses,
            elapsed_s=elapsed,
            fraction_done=min(fraction, 1.0),
            eta_s=None if eta is None or math.isnan(eta) else eta,
        )
