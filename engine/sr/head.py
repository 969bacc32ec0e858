"""The SR head: SinGAN's finest-scale generator shape, image to image, plus what inference needs with it.

psi_SR(u, z, a) = u + net(pad(u) + a * pad(z)): `net` is `num_convs` valid 3x3 convs (the first 3 -> C, the
inner ones C -> C, each followed by [BatchNorm] and LeakyReLU; the last C -> 3 with tanh), and `pad` is a
zero padding of one pixel per conv, so the residual has the input's size. At the defaults (64 channels,
5 convs, no BatchNorm) the net has 114,307 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from engine.networks import init_weights
from engine.spec.srconfig import SRConfig
from engine.spec.srmath import sr_schedule

KERNEL_SIZE = 3


def _block(in_channels: int, out_channels: int, cfg: SRConfig) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, padding=0)]
    if cfg.batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(cfg.leaky_slope))
    return nn.Sequential(*layers)


class SRNet(nn.Module):
    """The head's residual network: [B, 3, H + 2p, W + 2p] -> [B, 3, H, W] in [-1, 1], p = `padding`."""

    def __init__(self, cfg: SRConfig, rng: torch.Generator | None = None) -> None:
        super().__init__()
        self.padding = cfg.num_convs * (KERNEL_SIZE - 1) // 2  # 5 for 5 convs: the residual keeps the size
        self.channels = cfg.channels
        self.first = _block(3, cfg.channels, cfg)
        self.body = nn.Sequential(*[_block(cfg.channels, cfg.channels, cfg) for _ in range(cfg.body_layers)])
        self.last = nn.Sequential(nn.Conv2d(cfg.channels, 3, KERNEL_SIZE, padding=0), nn.Tanh())
        init_rng = rng if rng is not None else torch.Generator().manual_seed(0)
        self.apply(partial(init_weights, rng=init_rng))

    def residual(self, padded: torch.Tensor) -> torch.Tensor:
        """The residual of already padded (and noised) input: [B, 3, H + 2p, W + 2p] -> [B, 3, H, W]."""
        return self.last(self.body(self.first(padded)))

    def net_input(self, image: torch.Tensor, noise: torch.Tensor | None, amplitude: float) -> torch.Tensor:
        """pad(u) + a * pad(z): [B, 3, H, W] (+ noise of the same shape) -> [B, 3, H + 2p, W + 2p]."""
        pad = (self.padding,) * 4
        padded = F.pad(image, pad)
        if noise is None or amplitude == 0:
            return padded
        return padded + amplitude * F.pad(noise, pad)

    def forward(self, image: torch.Tensor, noise: torch.Tensor | None, amplitude: float) -> torch.Tensor:
        """psi_SR(u, z, a): image [B, 3, H, W] (an upsampled image), noise [B, 3, H, W] or None (zero)."""
        return image + self.residual(self.net_input(image, noise, amplitude))


@dataclass
class SRHead:
    """A trained SR head and the numbers SinGAN's loop runs it with. Callers treat it as a value."""

    config: SRConfig
    net: SRNet
    noise_amp: float  # a = 0.1 * RMSE(u_rec, x): the noise amplitude of every pass (times noise_scale)
    trained_on: tuple[int, int]  # (h, w) of the model's top image the head was trained on
    iterations_done: int

    @property
    def sr_train(self) -> float:
        return self.config.sr_train

    @property
    def passes(self) -> int:
        """K for sr_train (6 for x4)."""
        return sr_schedule(self.config.sr_train)[0]

    @property
    def r0(self) -> float:
        """The downscaling ratio the head learned to undo: sr_train^(-1/K) (2^(-1/3) for x2, x4, x8)."""
        return sr_schedule(self.config.sr_train)[2]

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> SRHead:
        self.net.to(device)
        return self
