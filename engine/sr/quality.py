"""How SR results are scored here (superres-spec.md §4.3): PSNR on 8-bit RGB, a sharpness proxy, the
shrink-back consistency, and the MATLAB-style bicubic baseline. Shared by the tests and bench/superres.py.
"""

from __future__ import annotations

import math

import torch

from engine.imresize import imresize, quantize
from engine.spec.srmath import sr_output_size

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as MATLAB's rgb2gray


def to_levels(image: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> float64 8-bit levels 0..255 (rounded, as a PNG stores them)."""
    return torch.round((image.detach().double().clamp(-1, 1) + 1) * 127.5)


def psnr(image: torch.Tensor, reference: torch.Tensor, shave: int = 0) -> float:
    """PSNR in dB of 8-bit RGB images ([1, 3, H, W] in [-1, 1], same size), `shave` px off every border."""
    if image.shape != reference.shape:
        raise ValueError(f"shapes differ: {list(image.shape)} vs {list(reference.shape)}")
    a, b = to_levels(image), to_levels(reference)
    if shave:
        a, b = a[..., shave:-shave, shave:-shave], b[..., shave:-shave, shave:-shave]
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def sharpness(image: torch.Tensor) -> float:
    """mean |horizontal difference| + mean |vertical difference| of the grey image on [0, 1].

    [1, 3, H, W] in [-1, 1]. A blur lowers it, added texture (or noise) raises it."""
    unit = (image.detach().double().clamp(-1, 1) + 1) / 2
    weights = torch.tensor(LUMA, dtype=torch.float64, device=unit.device).view(1, 3, 1, 1)
    grey = (unit * weights).sum(dim=1)
    return float((grey[..., :, 1:] - grey[..., :, :-1]).abs().mean()) + float(
        (grey[..., 1:, :] - grey[..., :-1, :]).abs().mean()
    )


def downscale(image: torch.Tensor, factor: int) -> torch.Tensor:
    """The low-resolution input of an SR experiment: MATLAB-style antialiased 1/factor, rounded to 8 bits.
    [1, 3, H, W] with H, W multiples of `factor` -> [1, 3, H/factor, W/factor]."""
    if image.shape[-2] % factor or image.shape[-1] % factor:
        raise ValueError(f"crop the image to a multiple of {factor} first: {list(image.shape)}")
    return quantize(imresize(image, 1 / factor))


def crop_to_multiple(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Top-left crop of [B, 3, H, W] to multiples of `factor` on both axes."""
    height, width = image.shape[-2:]
    return image[:, :, : height - height % factor, : width - width % factor]


def bicubic(image: torch.Tensor, factor: float) -> torch.Tensor:
    """The baseline: one MATLAB-style bicubic enlargement, cropped to SR's output size ⌊f·h⌋ x ⌊f·w⌋."""
    out_h, out_w = sr_output_size(image.shape[-2], image.shape[-1], factor)
    return imresize(image, factor)[:, :, :out_h, :out_w]


def shrink_back_psnr(enlarged: torch.Tensor, low_resolution: torch.Tensor, factor: float) -> float:
    """PSNR of the enlarged image taken back down by 1/factor against the input: does it keep the input?"""
    height, width = low_resolution.shape[-2:]
    return psnr(imresize(enlarged, 1 / factor)[:, :, :height, :width], low_resolution)
