"""The generator's per-stage inputs (spec §2): their shapes and how they are drawn.

Every random draw goes through an explicit `torch.Generator`; library code never touches global seeds.
"""

from __future__ import annotations

import torch

from engine.spec.config import TrainConfig


def make_rng(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded generator on `device` (noise is drawn where the model runs)."""
    rng = torch.Generator(device=torch.device(device))
    rng.manual_seed(seed)
    return rng


def noise_shape(stage: int, size: tuple[int, int], cfg: TrainConfig) -> tuple[int, int, int]:
    """(C, H, W) of the input of `stage` whose image is `size`: the 3-channel image size at stage 0,
    64-channel feature noise above it, enlarged by the body's valid-conv margin in feature-noise modes."""
    if stage == 0:
        return (3, *size)
    margin = 2 * cfg.num_layers if cfg.feature_noise else 0
    return (cfg.channels, size[0] + margin, size[1] + margin)


def draw(shape: tuple[int, ...], rng: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=rng, device=rng.device)


def draw_inputs(
    shapes: list[tuple[int, int]], cfg: TrainConfig, rng: torch.Generator, batch: int = 1
) -> list[torch.Tensor]:
    """Fresh standard-normal inputs for every stage in `shapes`: [batch, C_k, H_k', W_k'] each."""
    return [draw((batch, *noise_shape(k, size, cfg)), rng) for k, size in enumerate(shapes)]
