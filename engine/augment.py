"""Stage-0 training inputs for harmonization and editing (spec §5), re-implemented in torch.

The original used albumentations transforms whose API no longer exists; these follow their definitions.
Hole and patch sizes are given for a 120-px stage-0 image (the harmonization default) and scale with the
actual image, so a smaller quick preset sees the same relative corruption.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from engine.spec.config import TrainConfig

COLOUR_PROBABILITY = 0.25
CUTOUT_PROBABILITY = 0.9
REFERENCE_SIZE = 120  # the stage-0 size the original's pixel counts refer to


def stage0_training_input(
    cfg: TrainConfig, real0: torch.Tensor, noise0: torch.Tensor, rng: torch.Generator
) -> torch.Tensor:
    """What the generator's head sees at stage 0 in one training iteration. [1, 3, H0, W0] on real0's device.
    `rng` should be a CPU generator: the augmentations draw many scalars, each a host sync on CUDA."""
    if cfg.mode == "harmonization":
        return harmonization_augment(real0, rng)
    if cfg.mode == "editing":
        return shuffle_patches(real0, rng) + 0.1 * noise0
    return noise0


def _uniform(rng: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=rng, device=rng.device))


def _integer(rng: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in [low, high]."""
    return low + min(int(_uniform(rng) * (high - low + 1)), high - low)


def harmonization_augment(image: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """image: [1, 3, H, W] in [-1, 1] -> an augmented copy: maybe one colour transform, maybe cut-out holes."""
    out = (image + 1) / 2  # the transforms are defined on [0, 1]
    if _uniform(rng) < COLOUR_PROBABILITY:
        transform = COLOUR_TRANSFORMS[_integer(rng, 0, len(COLOUR_TRANSFORMS) - 1)]
        out = transform(out, rng).clamp(0, 1)
    if _uniform(rng) < CUTOUT_PROBABILITY:
        out = cut_out(out, rng)
    return out * 2 - 1


def multiplicative_noise(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    factors = torch.rand(x.shape, generator=rng, device=rng.device).to(x.device)
    return x * (0.5 + factors)


def additive_noise(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    # albumentations' GaussNoise default: variance 10..50 on the 0..255 scale
    std = math.sqrt(_uniform(rng, 10, 50)) / 255
    return x + std * torch.randn(x.shape, generator=rng, device=rng.device).to(x.device)


def invert(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    return 1 - x


SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def sepia(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    return torch.einsum("oc,bchw->bohw", SEPIA.to(x), x)


def drop_channel(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    out = x.clone()
    out[:, _integer(rng, 0, 2)] = 0
    return out


def shuffle_channels(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    order = torch.randperm(3, generator=rng, device=rng.device).to(x.device)
    return x[:, order]


def hsv_shift(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Shift hue by up to ±20 OpenCV units (±40°), saturation by ±30/255, value by ±20/255."""
    hue, saturation, value = rgb_to_hsv(x).unbind(1)
    hue = torch.remainder(hue + _uniform(rng, -20, 20) / 180, 1.0)
    saturation = (saturation + _uniform(rng, -30, 30) / 255).clamp(0, 1)
    value = (value + _uniform(rng, -20, 20) / 255).clamp(0, 1)
    return hsv_to_rgb(torch.stack([hue, saturation, value], dim=1))


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> HSV, each in [0, 1]."""
    red, green, blue = x.unbind(1)
    value, argmax = x.max(dim=1)
    chroma = value - x.min(dim=1).values
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(
        argmax == 0,
        torch.remainder((green - blue) / safe, 6),
        torch.where(argmax == 1, (blue - red) / safe + 2, (red - green) / safe + 4),
    )
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    saturation = torch.where(
        value > 0, chroma / torch.where(value > 0, value, torch.ones_like(value)), value * 0
    )
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    hue, saturation, value = x.unbind(1)
    k = torch.stack([(5 + hue * 6) % 6, (3 + hue * 6) % 6, (1 + hue * 6) % 6], dim=1)
    weight = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return value[:, None] - value[:, None] * saturation[:, None] * weight


COLOUR_TRANSFORMS: tuple[Callable[[torch.Tensor, torch.Generator], torch.Tensor], ...] = (
    multiplicative_noise,
    additive_noise,
    invert,
    sepia,
    drop_channel,
    shuffle_channels,
    hsv_shift,
)


def cut_out(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """1-2 rectangular holes (30-60 px, or 15-30 px when two, at 120 px) filled with one random colour."""
    out = x.clone()
    height, width = x.shape[-2:]
    unit = min(height, width) / REFERENCE_SIZE
    holes = _integer(rng, 1, 2)
    low, high = (30, 60) if holes == 1 else (15, 30)
    for _ in range(holes):
        hole_h = max(1, min(height, round(_uniform(rng, low, high) * unit)))
        hole_w = max(1, min(width, round(_uniform(rng, low, high) * unit)))
        top, left = _integer(rng, 0, height - hole_h), _integer(rng, 0, width - hole_w)
        colour = torch.rand(3, generator=rng, device=rng.device).to(x)
        out[:, :, top : top + hole_h, left : left + hole_w] = colour[None, :, None, None]
    return out


def shuffle_patches(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Editing: copy 1-5 random rectangles (1/8 to 1/3 of each side) to randomly shifted positions."""
    out = x.clone()
    height, width = x.shape[-2:]
    for _ in range(_integer(rng, 1, 5)):
        patch_h = _integer(rng, max(1, height // 8), max(1, height // 3))
        patch_w = _integer(rng, max(1, width // 8), max(1, width // 3))
        src_top, src_left = _integer(rng, 0, height - patch_h), _integer(rng, 0, width - patch_w)
        dst_top, dst_left = _integer(rng, 0, height - patch_h), _integer(rng, 0, width - patch_w)
        out[:, :, dst_top : dst_top + patch_h, dst_left : dst_left + patch_w] = x[
            :, :, src_top : src_top + patch_h, src_left : src_left + patch_w
        ]
    return out
