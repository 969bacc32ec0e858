"""Sampling from a trained model (spec §4): random samples at any size, from any start stage, animations.

All n samples of a call go through the generator as one batch.
"""

from __future__ import annotations

import torch

from engine.augment import stage0_training_input
from engine.model import TrainedModel
from engine.networks import upsample
from engine.noise import draw, draw_inputs, make_rng, noise_shape

MAX_SCALE = 4.0
# Modes whose stage 0 learned from the training image, never from noise (spec §5): their samples start from it.
IMAGE_SEEDED_MODES = frozenset({"harmonization", "editing"})


def scaled_shapes(model: TrainedModel, scale: tuple[float, float]) -> list[tuple[int, int]]:
    """Every finished stage's (H, W) times (scale_h, scale_w), truncated as the original does."""
    scale_h, scale_w = scale
    if not (0 < scale_h <= MAX_SCALE and 0 < scale_w <= MAX_SCALE):
        raise ValueError(f"scale must be in (0, {MAX_SCALE}] on both axes, got {scale}")
    shapes = [(int(h * scale_h), int(w * scale_w)) for h, w in model.stage_shapes[: model.stages_done]]
    if min(min(s) for s in shapes) < 2 * model.config.num_layers:
        raise ValueError(f"scale {scale} makes the coarsest stage too small: {shapes[0]}")
    return shapes


def _fit(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A fixed input resized (bicubic) to another stage size, for start_stage > 0 at another scale."""
    if tuple(tensor.shape[-2:]) == shape[-2:]:
        return tensor
    return upsample(tensor, (shape[-2], shape[-1]))


@torch.no_grad()
def generate(model: TrainedModel, noise: list[torch.Tensor], shapes: list[tuple[int, int]]) -> torch.Tensor:
    """One generator pass in inference mode: [B, 3, H, W] in [-1, 1]."""
    model.generator.eval()
    return model.generator(noise, shapes, model.noise_amp)


def sample(
    model: TrainedModel,
    n: int = 1,
    *,
    rng: torch.Generator | None = None,
    scale: tuple[float, float] = (1.0, 1.0),
    start_stage: int = 0,
) -> torch.Tensor:
    """n random samples: [n, 3, int(H * scale_h), int(W * scale_w)] in [-1, 1].

    Stages below `start_stage` use the fixed reconstruction input (closer to the training image);
    `start_stage=0` is fully random. Harmonization and editing models are trained with an augmented copy
    of their image as stage 0's input and never see noise there (spec §5): noise at stage 0 gives static.
    Their samples are what the original's `generate_samples` draws: stage 0 gets a freshly augmented
    training image (harmonization: colour change and cut-out holes; editing: shuffled patches + 0.1 x
    noise), the stages above fresh noise.
    """
    if not 1 <= n <= 256:
        raise ValueError(f"n must be between 1 and 256, got {n}")
    if not 0 <= start_stage < model.stages_done:
        raise ValueError(f"start_stage must be between 0 and {model.stages_done - 1}, got {start_stage}")
    rng = rng if rng is not None else make_rng(0, model.device)
    shapes = scaled_shapes(model, scale)
    noise = draw_inputs(shapes, model.config, rng, batch=n)
    for k in range(start_stage):
        noise[k] = _fit(model.fixed_noise[k], noise[k].shape).expand_as(noise[k])
    if start_stage == 0 and model.config.mode in IMAGE_SEEDED_MODES:
        noise[0] = _augmented_images(model, noise[0], rng)
    return generate(model, [z.to(model.device) for z in noise], shapes)


def _augmented_images(model: TrainedModel, noise0: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """One augmented copy of the stage-0 training image per sample: [n, 3, H0', W0'] (noise0's shape)."""
    real0 = _fit(model.reals[0], tuple(noise0.shape))  # [1, 3, H0', W0']
    # the augmentations draw many scalars: a CPU generator (seeded from rng, so a seed still fixes them)
    cpu = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=rng, device=rng.device)))
    inputs = [
        stage0_training_input(model.config, real0, noise0[i : i + 1].to(real0.device), cpu)
        for i in range(noise0.shape[0])
    ]
    return torch.cat(inputs)


def reconstruct(model: TrainedModel) -> torch.Tensor:
    """G(z_rec): the model's rendition of its training image, [1, 3, H, W]."""
    return generate(model, model.fixed_noise, model.stage_shapes[: model.stages_done])


ANIMATION_BATCH = 16  # frames per generator call: memory follows the batch, not the animation's length


def animate(
    model: TrainedModel,
    n_frames: int = 100,
    *,
    rng: torch.Generator | None = None,
    alpha: float = 0.1,
    beta: float = 0.9,
    start_stage: int = 0,
) -> torch.Tensor:
    """A random walk around z_rec (spec §4): [n_frames, 3, H, W] in [-1, 1].

    alpha pulls the walk back towards z_rec, beta keeps its momentum; stages below start_stage stay fixed.
    Frames are rendered ANIMATION_BATCH at a time, each stage's walk continuing across batches.
    """
    if not 1 <= n_frames <= 1000:
        raise ValueError(f"n_frames must be between 1 and 1000, got {n_frames}")
    if not (0 <= alpha <= 1 and 0 <= beta <= 1):
        raise ValueError("alpha and beta must be in [0, 1]")
    if not 0 <= start_stage < model.stages_done:
        raise ValueError(f"start_stage must be between 0 and {model.stages_done - 1}, got {start_stage}")
    rng = rng if rng is not None else make_rng(0, model.device)
    shapes = model.stage_shapes[: model.stages_done]
    walks = [
        RandomWalk(model, k, size, rng, alpha, beta, moving=k >= start_stage) for k, size in enumerate(shapes)
    ]
    batches = []
    for first in range(0, n_frames, ANIMATION_BATCH):
        count = min(ANIMATION_BATCH, n_frames - first)
        batches.append(generate(model, [walk.steps(count) for walk in walks], shapes))
    return torch.cat(batches)


class RandomWalk:
    """One stage's input over time: z = alpha * z_rec + (1 - alpha) * (previous + step), where the step keeps
    beta of the last move and adds (1 - beta) of fresh noise."""

    def __init__(
        self,
        model: TrainedModel,
        stage: int,
        size: tuple[int, int],
        rng: torch.Generator,
        alpha: float,
        beta: float,
        moving: bool,
    ) -> None:
        self.fixed = model.fixed_noise[stage]  # [1, C, H', W']
        self.rng, self.alpha, self.beta, self.moving = rng, alpha, beta, moving
        self.shape = (1, *noise_shape(stage, size, model.config))
        if moving:
            self.previous = 0.99 * self.fixed + 0.01 * self._noise()
            self.before_previous = self.fixed

    def _noise(self) -> torch.Tensor:
        return draw(self.shape, self.rng).to(self.fixed.device)

    def steps(self, count: int) -> torch.Tensor:
        """The next `count` frames' inputs: [count, C, H', W']."""
        if not self.moving:
            return self.fixed.expand(count, *self.fixed.shape[1:])
        frames = []
        for _ in range(count):
            step = self.beta * (self.previous - self.before_previous) + (1 - self.beta) * self._noise()
            current = self.alpha * self.fixed + (1 - self.alpha) * (self.previous + step)
            frames.append(current)
            self.before_previous, self.previous = self.previous, current
        return torch.cat(frames)
