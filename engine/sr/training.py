"""Training an SR head on a trained ConSinGAN model (superres-spec.md §3.3): SinGAN's finest scale, with the
model's samples standing in for SinGAN's coarser generated images.

Per iteration: `discriminator_steps` WGAN-GP critic updates, each on a fresh model sample taken down by r0
and back up by 1/r0 (u_fake) and enlarged by the head with this iteration's noise; then `generator_steps`
head updates on -mean D(psi(u_fake, z, a)) + alpha * MSE(psi(u_rec, 0, a), x), both terms recomputed at
every update. x is the model's top image, u_rec = crop(imresize(imresize(x, r0), 1/r0)).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.imresize import imresize
from engine.model import TrainedModel
from engine.networks import Discriminator
from engine.noise import draw, draw_inputs, make_rng
from engine.sampling import generate
from engine.spec.srconfig import SRConfig
from engine.spec.srmath import SR_MODES, sr_schedule
from engine.sr.head import SRHead, SRNet
from engine.steps import critic_loss
from engine.training import Progress, ProgressCallback, StopCheck, TrainingCanceled


def degrade(image: torch.Tensor, r0: float) -> torch.Tensor:
    """What one SR step has to undo: down by r0, back up by 1/r0 (MATLAB-style), top-left crop to the input.

    [B, 3, h, w] -> [B, 3, h, w]; the up-scaling keeps the top-left pixel edge fixed, so the crop aligns."""
    height, width = image.shape[-2:]
    return imresize(imresize(image, r0), 1 / r0)[:, :, :height, :width]


@dataclass(frozen=True)
class _Setup:
    real: torch.Tensor  # x: [1, 3, h, w], the model's top image
    reconstruction_input: torch.Tensor  # u_rec: [1, 3, h, w]
    noise_amp: float
    r0: float
    discriminator: Discriminator
    head_optimizer: torch.optim.Adam
    critic_optimizer: torch.optim.Adam
    schedulers: tuple[torch.optim.lr_scheduler.MultiStepLR, torch.optim.lr_scheduler.MultiStepLR]


def train_sr_head(
    model: TrainedModel,
    cfg: SRConfig | None = None,
    *,
    rng: torch.Generator | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    progress_every: int = 10,
) -> SRHead:
    """Train an SR head for `model` (complete, mode generation/retarget/animation) on its device.

    `rng` must live on the model's device (`make_rng(seed, device)`); it fixes the head's weights and every
    draw. Progress is reported as one stage (stage 0 of 1) of `cfg.iterations` iterations; raises
    `TrainingCanceled` when `should_stop()` turns True.
    """
    cfg = cfg if cfg is not None else SRConfig()
    _check_model(model)
    device = model.device
    rng = rng if rng is not None else make_rng(0, device)
    if rng.device.type != device.type:
        raise ValueError(
            f"rng lives on {rng.device} but the model is on {device}: use make_rng(seed, device)"
        )
    init_seed = int(torch.randint(0, 2**62, (), generator=rng, device=rng.device))
    net = SRNet(cfg, torch.Generator().manual_seed(init_seed)).to(device)
    setup = _setup(model, net, cfg, init_seed)
    started = time.monotonic()
    net.train()
    for iteration in range(1, cfg.iterations + 1):
        if should_stop is not None and should_stop():
            raise TrainingCanceled(f"SR head stopped at iteration {iteration}")
        losses = _iteration(model, net, setup, cfg, rng)
        for scheduler in setup.schedulers:
            scheduler.step()
        last = iteration == cfg.iterations
        if on_progress is not None and (iteration % progress_every == 0 or last):
            # losses stay on the device between reports: reading them is a host sync on CUDA
            reported = {name: float(value) for name, value in losses.items()}
            on_progress(_progress(iteration, cfg.iterations, reported, time.monotonic() - started))
    net.eval()
    net.requires_grad_(False)
    top_h, top_w = model.stage_shapes[-1]
    return SRHead(
        config=cfg,
        net=net,
        noise_amp=setup.noise_amp,
        trained_on=(top_h, top_w),
        iterations_done=cfg.iterations,
    )


def _check_model(model: TrainedModel) -> None:
    if not model.is_complete:
        raise ValueError(f"the model is not fully trained ({model.stages_done}/{model.num_stages} stages)")
    if model.config.mode not in SR_MODES:
        raise ValueError(
            f"SR heads are trained on {', '.join(SR_MODES)} models (their samples are images of the scene), "
            f"not on a {model.config.mode} model"
        )


def _setup(model: TrainedModel, net: SRNet, cfg: SRConfig, init_seed: int) -> _Setup:
    real = model.reals[-1]
    _, _, r0 = sr_schedule(cfg.sr_train)
    with torch.no_grad():
        reconstruction_input = degrade(real, r0)
        noise_amp = cfg.noise_amp_scale * float(torch.sqrt(F.mse_loss(reconstruction_input, real)))
    if cfg.discriminator_init == "model":
        discriminator = copy.deepcopy(model.discriminator)
    else:
        discriminator = Discriminator(model.config, torch.Generator().manual_seed(init_seed + 1))
    discriminator.to(real.device).requires_grad_(True)
    head_optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=cfg.betas)
    critic_optimizer = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=cfg.betas)
    milestone = round(cfg.lr_decay_at * cfg.iterations)
    schedulers = (
        torch.optim.lr_scheduler.MultiStepLR(head_optimizer, milestones=[milestone], gamma=0.1),
        torch.optim.lr_scheduler.MultiStepLR(critic_optimizer, milestones=[milestone], gamma=0.1),
    )
    return _Setup(
        real, reconstruction_input, noise_amp, r0, discriminator, head_optimizer, critic_optimizer, schedulers
    )


def adversarial_inputs(
    model: TrainedModel, count: int, r0: float, source: str, rng: torch.Generator
) -> torch.Tensor:
    """`count` images for the head to enlarge in the critic steps: [count, 3, h, w], degraded by one step.

    "samples": fresh random samples of the model at its top size; "real": the top image itself."""
    if source == "real":
        return degrade(model.reals[-1], r0).expand(count, -1, -1, -1)
    shapes = model.stage_shapes
    noise = [z.to(model.device) for z in draw_inputs(shapes, model.config, rng, batch=count)]
    return degrade(generate(model, noise, shapes), r0)


def _iteration(
    model: TrainedModel, net: SRNet, setup: _Setup, cfg: SRConfig, rng: torch.Generator
) -> dict[str, torch.Tensor]:
    """One iteration; returns its losses as 0-d tensors."""
    real = setup.real
    with torch.no_grad():
        enlarged = adversarial_inputs(model, cfg.discriminator_steps, setup.r0, cfg.adversarial_source, rng)
    # one noise map per iteration for every critic step (SinGAN's noise_), a new degraded image per step
    noise = draw(tuple(real.shape), rng)  # [1, 3, h, w]
    mix = torch.rand(cfg.discriminator_steps, generator=rng, device=rng.device)
    critic = adversarial = reconstruction = torch.zeros(())
    fake_input = enlarged[:1]
    for step in range(cfg.discriminator_steps):
        fake_input = enlarged[step : step + 1]
        with torch.no_grad():
            fake = net(fake_input, noise, setup.noise_amp)
        setup.critic_optimizer.zero_grad(set_to_none=True)
        critic = critic_loss(setup.discriminator, real, fake, mix[step], cfg.gradient_penalty_weight)
        critic.backward()
        setup.critic_optimizer.step()
    setup.discriminator.requires_grad_(False)
    try:
        for _ in range(cfg.generator_steps):
            adversarial = -setup.discriminator(net(fake_input, noise, setup.noise_amp)).mean()
            reconstruction = cfg.alpha * F.mse_loss(net(setup.reconstruction_input, None, 0.0), real)
            setup.head_optimizer.zero_grad(set_to_none=True)
            (adversarial + reconstruction).backward()
            setup.head_optimizer.step()
    finally:
        setup.discriminator.requires_grad_(True)
    return {
        "critic": critic.detach(),
        "adversarial": adversarial.detach(),
        "reconstruction": reconstruction.detach(),
    }


def _progress(iteration: int, iterations: int, losses: dict[str, float], elapsed: float) -> Progress:
    fraction = iteration / iterations
    return Progress(
        stage=0,
        num_stages=1,
        iteration=iteration,
        iters_per_stage=iterations,
        losses=losses,
        elapsed_s=elapsed,
        fraction_done=fraction,
        eta_s=elapsed * (1 - fraction) / fraction,
    )
