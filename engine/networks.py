"""ConSinGAN's networks (spec §2): a generator that grows one body per stage, and a patch discriminator.

Convolutions have no padding; the generator pads explicitly so every stage keeps its image's size.
"""

from __future__ import annotations

import copy
import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from engine.spec.config import TrainConfig


class ConvBlock(nn.Sequential):
    """Conv (valid, with bias) -> [BatchNorm] -> LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, cfg: TrainConfig, *, batch_norm: bool) -> None:
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_channels, out_channels, cfg.kernel_size, stride=1, padding=0))
        if batch_norm:
            self.add_module("norm", nn.BatchNorm2d(out_channels))
        self.add_module("act", nn.LeakyReLU(cfg.leaky_slope))


def init_weights(module: nn.Module, rng: torch.Generator) -> None:
    """The original's init: conv weights N(0, 0.02), conv biases PyTorch's default U(+-1/sqrt(fan_in));
    norm weights N(1, 0.02), biases 0. Drawn from `rng` (CPU) so a seed fixes the whole training."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02, generator=rng)
        if module.bias is not None:
            bound = 1 / math.sqrt(module.weight[0].numel())
            nn.init.uniform_(module.bias, -bound, bound, generator=rng)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02, generator=rng)
        nn.init.zeros_(module.bias)


def _init_rng(rng: torch.Generator | None) -> torch.Generator:
    # modules are built on the CPU; without an rng (a checkpoint about to be loaded) any fixed seed will do
    return rng if rng is not None else torch.Generator().manual_seed(0)


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bicubic", align_corners=True)


def _body(cfg: TrainConfig, *, batch_norm: bool) -> nn.Sequential:
    return nn.Sequential(
        *[ConvBlock(cfg.channels, cfg.channels, cfg, batch_norm=batch_norm) for _ in range(cfg.num_layers)]
    )


class Discriminator(nn.Module):
    """Patch critic: [B, 3, H, W] -> [B, 1, H - 2(L+2), W - 2(L+2)] scores (L = num_layers, 3x3 kernels)."""

    def __init__(self, cfg: TrainConfig, rng: torch.Generator | None = None) -> None:
        super().__init__()
        self.head = ConvBlock(3, cfg.channels, cfg, batch_norm=False)
        self.body = _body(cfg, batch_norm=False)
        self.tail = nn.Conv2d(cfg.channels, 1, cfg.kernel_size, padding=0)
        self.apply(partial(init_weights, rng=_init_rng(rng)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(image)))


class Generator(nn.Module):
    """head -> body[0] -> (upsample, + noise, body[k], residual) for k >= 1 -> tail + tanh.

    `feature_noise` (generation, animation): stage k >= 1 gets noise of size (H_k + 2L, W_k + 2L) added to
    the upsampled features before its valid convs, and stage 0 is enlarged by 2 px then zero-padded, which
    varies the borders. Otherwise (retarget, harmonization, editing) the sum is zero-padded by L instead.
    """

    def __init__(self, cfg: TrainConfig, rng: torch.Generator | None = None) -> None:
        super().__init__()
        self.feature_noise = cfg.feature_noise
        self.num_layers = cfg.num_layers
        self.head = ConvBlock(3, cfg.channels, cfg, batch_norm=cfg.batch_norm)
        self.body = nn.ModuleList([_body(cfg, batch_norm=cfg.batch_norm)])
        self.tail = nn.Sequential(nn.Conv2d(cfg.channels, 3, cfg.kernel_size, padding=0), nn.Tanh())
        self.apply(partial(init_weights, rng=_init_rng(rng)))

    @property
    def num_stages(self) -> int:
        return len(self.body)

    def grow(self) -> None:
        """Add the next stage's body as a copy of the newest one (not a fresh init, as in the original)."""
        self.body.append(copy.deepcopy(self.body[-1]))

    def forward(
        self,
        noise: list[torch.Tensor],
        shapes: list[tuple[int, int]],
        amplitudes: list[float],
        first: int = 0,
    ) -> torch.Tensor:
        """noise[k]: stage k's input ([B, 3, H0, W0] at k = first, [B, C, H_k(+2L), W_k(+2L)] above);
        -> [B, 3, H_last, W_last] in [-1, 1]. `first` > 0 starts at that stage's body with the head's
        output (harmonization's later injection); lists are indexed by absolute stage."""
        pad_block = self.num_layers - 1 if self.feature_noise else self.num_layers
        x = self.head(F.pad(noise[first], (1, 1, 1, 1)))
        if self.feature_noise:
            x = upsample(x, (x.shape[2] + 2, x.shape[3] + 2))
        x = self.body[first](F.pad(x, (pad_block,) * 4))
        margin = 2 * self.num_layers
        for k in range(first + 1, len(self.body)):
            base = upsample(x, shapes[k])
            if self.feature_noise:
                enlarged = upsample(x, (shapes[k][0] + margin, shapes[k][1] + margin))
                x = self.body[k](enlarged + noise[k] * amplitudes[k]) + base
            else:
                x = self.body[k](F.pad(base + noise[k] * amplitudes[k], (pad_block,) * 4)) + base
        return self.tail(F.pad(x, (1, 1, 1, 1)))
