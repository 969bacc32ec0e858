"""The building blocks of one ConSinGAN training stage (spec §3), shared by both training paths.

`begin_stage` grows the networks and fixes a stage's reconstruction input and noise amplitude;
`stage_setup` builds its optimizers; `draw_iteration_inputs` draws all of an iteration's randomness;
`iteration_step` computes the iteration from those inputs alone (no randomness, no host sync, static
shapes), which is what lets the fast path replay it as a CUDA graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.augment import stage0_training_input
from engine.model import TrainedModel
from engine.networks import Discriminator, Generator
from engine.noise import draw, draw_inputs, noise_shape
from engine.spec.config import TrainConfig


@dataclass(frozen=True)
class StageSetup:
    """What one stage trains with: its image, the shapes below it, optimizers and schedules."""

    stage: int
    real: torch.Tensor  # [1, 3, H_s, W_s]
    shapes: list[tuple[int, int]]  # stage sizes 0..s
    generator_optimizer: torch.optim.Adam
    discriminator_optimizer: torch.optim.Adam
    schedulers: tuple[torch.optim.lr_scheduler.MultiStepLR, torch.optim.lr_scheduler.MultiStepLR]
    # CPU generator for the harmonization/editing augmentations: their many scalar draws would each be a
    # host sync on a CUDA generator; seeded once per stage from the training rng
    augment_rng: torch.Generator


def begin_stage(
    model: TrainedModel, stage: int, rng: torch.Generator, adam_options: dict[str, Any] | None = None
) -> StageSetup:
    """Grow the generator, fix this stage's reconstruction input and noise amplitude, build optimizers."""
    if stage > 0:
        model.generator.grow()  # the critic simply carries on with the previous stage's weights
    model.fixed_noise.append(_reconstruction_input(model, stage, rng))
    model.noise_amp.append(1.0 if stage == 0 else 0.0)
    model.generator.train()
    if stage > 0:
        model.noise_amp[stage] = _noise_amplitude(model, stage, model.stage_shapes[: stage + 1])
    return stage_setup(model, stage, model.config.iters_per_stage, rng, adam_options)


def stage_setup(
    model: TrainedModel,
    stage: int,
    iterations: int,
    rng: torch.Generator,
    adam_options: dict[str, Any] | None = None,
) -> StageSetup:
    """Optimizers and learning-rate schedules for training `stage` of `model` for `iterations` steps.
    `adam_options`: extra Adam arguments (the fast path's fused/capturable)."""
    cfg = model.config
    extra = adam_options or {}
    generator_optimizer = _generator_optimizer(model.generator, stage, cfg, extra)
    discriminator_optimizer = torch.optim.Adam(
        model.discriminator.parameters(), lr=cfg.lr, betas=cfg.betas, **extra
    )
    milestone = round(cfg.lr_decay_at * iterations)
    schedulers = (
        torch.optim.lr_scheduler.MultiStepLR(generator_optimizer, milestones=[milestone], gamma=0.1),
        torch.optim.lr_scheduler.MultiStepLR(discriminator_optimizer, milestones=[milestone], gamma=0.1),
    )
    shapes = model.stage_shapes[: stage + 1]
    augment_seed = int(torch.randint(0, 2**62, (), generator=rng, device=rng.device))
    return StageSetup(
        stage,
        model.reals[stage],
        shapes,
        generator_optimizer,
        discriminator_optimizer,
        schedulers,
        torch.Generator().manual_seed(augment_seed),
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


def _generator_optimizer(
    generator: Generator, stage: int, cfg: TrainConfig, extra: dict[str, Any]
) -> torch.optim.Adam:
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
    return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, **extra)


@dataclass(frozen=True)
class IterationInputs:
    """All the randomness of one iteration, drawn before any compute (so a CUDA graph can replay it)."""

    noise: list[torch.Tensor]  # per stage 0..s: the generator's inputs, [1, C_k, H_k', W_k']
    mix: torch.Tensor  # [discriminator_steps]: the gradient penalty's blend weight of each critic step


def draw_iteration_inputs(
    model: TrainedModel, setup: StageSetup, rng: torch.Generator, stage0_input: torch.Tensor | None = None
) -> IterationInputs:
    """Fresh noise for every stage (stage 0 per the mode, or `stage0_input`), then the blend weights."""
    cfg = model.config
    noise = draw_inputs(setup.shapes, cfg, rng)
    if stage0_input is not None:
        noise[0] = stage0_input
    else:
        noise[0] = stage0_training_input(cfg, model.reals[0], noise[0], setup.augment_rng)
    mix = torch.rand(cfg.discriminator_steps, generator=rng, device=rng.device)
    return IterationInputs([z.to(setup.real.device) for z in noise], mix.to(setup.real.device))


def train_iteration(
    model: TrainedModel, setup: StageSetup, rng: torch.Generator, stage0_input: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The reference iteration: draw its inputs, compute it, step the schedules.
    `stage0_input` replaces the mode's stage-0 input (fine-tuning feeds the naive image)."""
    losses = iteration_step(model, setup, draw_iteration_inputs(model, setup, rng, stage0_input))
    for scheduler in setup.schedulers:
        scheduler.step()
    return losses


def iteration_step(
    model: TrainedModel, setup: StageSetup, inputs: IterationInputs
) -> dict[str, torch.Tensor]:
    """`discriminator_steps` critic updates on one noise draw, then the generator update.

    Deterministic given its inputs, no host sync, static shapes: both training paths run exactly this.
    Returns the losses as 0-d tensors."""
    cfg = model.config
    fake = torch.empty(0)
    critic = torch.zeros(())
    for step in range(cfg.discriminator_steps):
        with torch.set_grad_enabled(step == cfg.discriminator_steps - 1):
            fake = model.generator(inputs.noise, setup.shapes, model.noise_amp)
        critic = discriminator_step(model.discriminator, setup, fake.detach(), inputs.mix[step], cfg)
    adversarial, reconstruction = generator_step(model, setup, fake)
    return {"critic": critic, "adversarial": adversarial, "reconstruction": reconstruction}


def discriminator_step(
    discriminator: Discriminator, setup: StageSetup, fake: torch.Tensor, mix: torch.Tensor, cfg: TrainConfig
) -> torch.Tensor:
    """WGAN-GP critic update: -mean D(real) + mean D(fake) + weight * GP. fake: [1, 3, H, W], detached."""
    setup.discriminator_optimizer.zero_grad(set_to_none=True)
    loss = critic_loss(discriminator, setup.real, fake, mix, cfg.gradient_penalty_weight)
    loss.backward()
    setup.discriminator_optimizer.step()
    return loss.detach()


def critic_loss(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, mix: torch.Tensor, penalty_weight: float
) -> torch.Tensor:
    penalty = gradient_penalty(discriminator, real, fake, mix)
    return -discriminator(real).mean() + discriminator(fake).mean() + penalty_weight * penalty


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, mix: torch.Tensor
) -> torch.Tensor:
    """mean over pixels of (||dD/dx||_2 over channels - 1)^2 at x = mix*real + (1-mix)*fake; mix is ONE
    scalar for the whole image, as in the original."""
    blended = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(blended).sum(), blended, create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def generator_step(
    model: TrainedModel, setup: StageSetup, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """-mean D(fake) + alpha * MSE(G(z_rec), real); `generator_steps` optimizer steps on that one gradient."""
    cfg = model.config
    model.discriminator.requires_grad_(False)
    try:
        adversarial = -model.discriminator(fake).mean()
        reconstruction = model.generator(model.fixed_noise, setup.shapes, model.noise_amp)
        reconstruction_loss = cfg.reconstruction_weight * F.mse_loss(reconstruction, setup.real)
        setup.generator_optimizer.zero_grad(set_to_none=True)
        (adversarial + reconstruction_loss).backward()
        for _ in range(cfg.generator_steps):
            setup.generator_optimizer.step()
    finally:
        model.discriminator.requires_grad_(True)  # also after a failed graph capture: the critic must train
    return adversarial.detach(), reconstruction_loss.detach()
