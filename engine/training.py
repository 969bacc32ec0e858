"""ConSinGAN training, the reference path: fp32, eager, one stage after another (spec §3).

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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.augment import stage0_training_input
from engine.config import TrainConfig
from engine.model import TrainedModel
from engine.networks import Discriminator, Generator
from engine.noise import draw, draw_inputs, make_rng, noise_shape
from engine.pyramid import build_pyramid


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


@dataclass(frozen=True)
class StageSetup:
    """What one stage trains with: its image, the shapes below it, optimizers and schedules."""

    stage: int
    real: torch.Tensor  # [1, 3, H_s, W_s]
    shapes: list[tuple[int, int]]  # stage sizes 0..s
    generator_optimizer: torch.optim.Adam
    discriminator_optimizer: torch.optim.Adam
    schedulers: tuple[torch.optim.lr_scheduler.MultiStepLR, torch.optim.lr_scheduler.MultiStepLR]


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
) -> TrainedModel:
    """Train a ConSinGAN on `image` ([1, 3, H, W] in [-1, 1], any size; the pyramid resizes it).

    `rng` must live on `device` (see `make_rng`); `resume` continues a snapshot from `on_stage_done`.
    Returns the complete model. Raises `TrainingCanceled` when `should_stop()` turns True.
    """
    device = torch.device(device)
    rng = rng if rng is not None else make_rng(0, device)
    _check_image(image)
    model = _start_or_resume(image, cfg, device, resume, _cpu_rng(rng))
    clock = _Clock(model.stage_shapes, cfg, model.stages_done)
    for stage in range(model.stages_done, cfg.train_stages):
        setup = begin_stage(model, stage, rng)
        for iteration in range(1, cfg.iters_per_stage + 1):
            if should_stop is not None and should_stop():
                raise TrainingCanceled(f"stopped at stage {stage}, iteration {iteration}")
            losses = train_iteration(model, setup, rng)
            if on_progress is not None and (
                iteration % progress_every == 0 or iteration == cfg.iters_per_stage
            ):
                on_progress(clock.progress(stage, iteration, {k: float(v) for k, v in losses.items()}))
        if on_stage_done is not None:
            on_stage_done(model)
    model.generator.eval()
    return model


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


def begin_stage(model: TrainedModel, stage: int, rng: torch.Generator) -> StageSetup:
    """Grow the generator, fix this stage's reconstruction input and noise amplitude, build optimizers."""
    if stage > 0:
        model.generator.grow()  # the critic simply carries on with the previous stage's weights
    model.fixed_noise.append(_reconstruction_input(model, stage, rng))
    model.noise_amp.append(1.0 if stage == 0 else 0.0)
    model.generator.train()
    if stage > 0:
        model.noise_amp[stage] = _noise_amplitude(model, stage, model.stage_shapes[: stage + 1])
    return stage_setup(model, stage, model.config.iters_per_stage)


def stage_setup(model: TrainedModel, stage: int, iterations: int) -> StageSetup:
    """Optimizers and learning-rate schedules for training `stage` of `model` for `iterations` steps."""
    cfg = model.config
    generator_optimizer = _generator_optimizer(model.generator, stage, cfg)
    discriminator_optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=cfg.lr, betas=cfg.betas)
    milestone = round(cfg.lr_decay_at * iterations)
    schedulers = (
        torch.optim.lr_scheduler.MultiStepLR(generator_optimizer, milestones=[milestone], gamma=0.1),
        torch.optim.lr_scheduler.MultiStepLR(discriminator_optimizer, milestones=[milestone], gamma=0.1),
    )
    shapes = model.stage_shapes[: stage + 1]
    return StageSetup(
        stage, model.reals[stage], shapes, generator_optimizer, discriminator_optimizer, schedulers
    )


def _reconstruction_input(model: TrainedModel, stage: int, rng: torch.Generator) -> torch.Tensor:
    """z_rec[stage]: the stage-0 image itself (noisy for editing, pure noise for animation), noise above."""
    cfg = model.config
    size = model.stage_shapes[stage]
    if stage > 0 or cfg.mode == "animation":
        return draw((1, *noise_shape(stage, size, cfg)), rng)
    if cfg.mode == "editing":
        return model.reals[0] + 0.1 * draw(tuple(model.reals[0].shape), rng)
    return model.reals[0].clone()


@torch.no_grad()
def _noise_amplitude(model: TrainedModel, stage: int, shapes: list[tuple[int, int]]) -> float:
    """amp[s] = noise_amp_scale * RMSE(G(z_rec) with amp[s] = 0, stage image)."""
    reconstruction = model.generator(model.fixed_noise, shapes, model.noise_amp)
    rmse = torch.sqrt(F.mse_loss(reconstruction, model.reals[stage]))
    return model.config.noise_amp_scale * float(rmse)


def _generator_optimizer(generator: Generator, stage: int, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam over the newest `train_depth` bodies (lower ones at lr * lr_scale^depth), the tail, and the
    head while stage < train_depth; everything else is frozen."""
    trained = list(generator.body[-cfg.train_depth :])
    for body in generator.body[: -cfg.train_depth] if len(generator.body) > cfg.train_depth else []:
        body.requires_grad_(False)
    groups: list[dict] = []
    for depth_from_top, body in enumerate(reversed(trained)):
        body.requires_grad_(True)
        groups.append({"params": list(body.parameters()), "lr": cfg.lr * cfg.lr_scale**depth_from_top})
    train_head = stage < cfg.train_depth
    generator.head.requires_grad_(train_head)
    if train_head:
        groups.append({"params": list(generator.head.parameters()), "lr": cfg.lr * cfg.lr_scale**stage})
    generator.tail.requires_grad_(True)
    groups.append({"params": list(generator.tail.parameters()), "lr": cfg.lr})
    return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)


def train_iteration(
    model: TrainedModel, setup: StageSetup, rng: torch.Generator, stage0_input: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """One iteration: `discriminator_steps` critic updates on one noise draw, then the generator update.
    `stage0_input` replaces the mode's stage-0 input (fine-tuning feeds the naive image).
    Returns the losses as 0-d tensors (no host sync here)."""
    cfg = model.config
    noise = draw_inputs(setup.shapes, cfg, rng)
    if stage0_input is not None:
        noise[0] = stage0_input
    else:
        noise[0] = stage0_training_input(cfg, model.reals[0], noise[0], rng)
    fake = torch.empty(0)
    critic_loss = torch.zeros(())
    for step in range(cfg.discriminator_steps):
        with torch.set_grad_enabled(step == cfg.discriminator_steps - 1):
            fake = model.generator(noise, setup.shapes, model.noise_amp)
        critic_loss = discriminator_step(model.discriminator, setup, fake.detach(), cfg, rng)
    adversarial, reconstruction = generator_step(model, setup, fake)
    for scheduler in setup.schedulers:
        scheduler.step()
    return {"critic": critic_loss, "adversarial": adversarial, "reconstruction": reconstruction}


def discriminator_step(
    discriminator: Discriminator,
    setup: StageSetup,
    fake: torch.Tensor,
    cfg: TrainConfig,
    rng: torch.Generator,
) -> torch.Tensor:
    """WGAN-GP critic update: -mean D(real) + mean D(fake) + weight * GP. fake: [1, 3, H, W], detached."""
    setup.discriminator_optimizer.zero_grad(set_to_none=True)
    loss = critic_loss(discriminator, setup.real, fake, cfg.gradient_penalty_weight, rng)
    loss.backward()
    setup.discriminator_optimizer.step()
    return loss.detach()


def critic_loss(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    penalty_weight: float,
    rng: torch.Generator,
) -> torch.Tensor:
    penalty = gradient_penalty(discriminator, real, fake, rng)
    return -discriminator(real).mean() + discriminator(fake).mean() + penalty_weight * penalty


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator
) -> torch.Tensor:
    """mean over pixels of (||dD/dx||_2 over channels - 1)^2 at x = a*real + (1-a)*fake, ONE scalar a."""
    mix = torch.rand((), generator=rng, device=rng.device).to(real.device)
    blended = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(blended).sum(), blended, create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def generator_step(
    model: TrainedModel, setup: StageSetup, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """-mean D(fake) + alpha * MSE(G(z_rec), real); `generator_steps` optimizer steps on that one gradient."""
    cfg = model.config
    model.discriminator.requires_grad_(False)
    adversarial = -model.discriminator(fake).mean()
    reconstruction = model.generator(model.fixed_noise, setup.shapes, model.noise_amp)
    reconstruction_loss = cfg.reconstruction_weight * F.mse_loss(reconstruction, setup.real)
    setup.generator_optimizer.zero_grad(set_to_none=True)
    (adversarial + reconstruction_loss).backward()
    for _ in range(cfg.generator_steps):
        setup.generator_optimizer.step()
    model.discriminator.requires_grad_(True)
    return adversarial.detach(), reconstruction_loss.detach()


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
