"""MATLAB-style `imresize`: the resize that builds ConSinGAN's image pyramid (spec §1).

Separable Keys cubic kernel (a = -0.5), antialiased when shrinking, output size `ceil(in * scale)`,
symmetric reflection at the borders, one axis at a time. Each axis is one dense [out, in] weight matrix,
so a resize is two matrix products in float64.

The original quantises to 8 bits before every resize. It truncates `255 * (x + 1) / 2`, which float error
can push one level down; we round instead (the intended value). The original also computes its mirrored
indices through a cast of negative floats to unsigned integers, whose result depends on the platform; we
use the true symmetric reflection that the MATLAB function defines.
"""

from __future__ import annotations

import math

import torch

from engine.spec.geometry import output_length


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def weight_matrix(in_length: int, out_length: int, scale: float) -> torch.Tensor:
    """[out_length, in_length] float64 matrix M with out = M @ in along one axis."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    positions = torch.arange(1, out_length + 1, dtype=torch.float64)  # 1-based output pixels
    centres = positions / scale + 0.5 * (1 - 1 / scale)  # where each output pixel samples the input
    left = torch.floor(centres - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # [out, taps], 1-based
    distance = centres[:, None] - indices
    weights = scale * cubic(scale * distance) if antialias else cubic(distance)
    sums = weights.sum(dim=1, keepdim=True)
    weights = weights / torch.where(sums == 0, torch.ones_like(sums), sums)
    mirrored = _reflect(indices.long() - 1, in_length)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, mirrored, weights)
    return matrix


def _reflect(index: torch.Tensor, length: int) -> torch.Tensor:
    """Symmetric reflection of 0-based indices into [0, length): -1 -> 0, length -> length - 1."""
    period = 2 * length
    folded = torch.remainder(index, period)
    return torch.where(folded < length, folded, period - 1 - folded)


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round an image in [-1, 1] to the nearest of 256 levels, as a uint8 round trip would."""
    levels = torch.round((image.clamp(-1, 1) + 1) * 127.5)
    return levels / 127.5 - 1


def resize_to(image: torch.Tensor, size: tuple[int, int], scale: tuple[float, float]) -> torch.Tensor:
    """Resize `image` [B, C, H, W] to `size` with the given per-axis scales (the kernel depends on both).

    Axes are resized smaller scale first, as the original does; an axis whose scale is 1 is left alone.
    """
    height, width = image.shape[-2:]
    out = image.to(torch.float64)
    axes = sorted(((scale[0], 0), (scale[1], 1)), key=lambda pair: pair[0])
    for axis_scale, axis in axes:
        if axis_scale == 1.0:
            continue
        if axis == 0:
            matrix = weight_matrix(height, size[0], axis_scale).to(out.device)
            out = torch.einsum("oh,bchw->bcow", matrix, out)
        else:
            matrix = weight_matrix(width, size[1], axis_scale).to(out.device)
            out = torch.einsum("ow,bchw->bcho", matrix, out)
    return out.to(image.dtype)


def imresize(image: torch.Tensor, scale: float) -> torch.Tensor:
    """The original's `imresize(x, scale)`: quantise to 8 bits, resize by `scale` on both axes, clamp.

    image: [B, C, H, W] in [-1, 1] -> [B, C, ceil(H * scale), ceil(W * scale)] in [-1, 1].
    """
    height, width = image.shape[-2:]
    size = (output_length(height, scale), output_length(width, scale))
    return resize_to(quantize(image), size, (scale, scale)).clamp(-1, 1)
