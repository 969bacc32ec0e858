"""Super-resolution with a trained head: SinGAN's loop (superres-spec.md §2, §3.3).

Start from the model's top image (or a sample of it); K times: MATLAB-style upsampling by step = f^(1/K)
(8-bit rounded first, output ⌈size·step⌉), then x = psi_SR(u, z, noise_scale·a) with fresh RGB noise; finally
the top-left crop to ⌊f·h⌋ x ⌊f·w⌋, clamped to [-1, 1].

Randomness: one seed per variant is drawn from `rng`, and variant i's noise comes from its own generator,
so a variant does not depend on n, on how the batch is split, or on the other variants.

Memory: the head runs in bands of rows (exact: a band of output rows reads its rows plus a 5-px halo of the
padded input), sized so its activations stay under `memory_budget`; images themselves are 3-channel.
"""

from __future__ import annotations

import math
import warnings

import torch

from engine.imresize import quantize, resize_to
from engine.model import TrainedModel
from engine.noise import make_rng
from engine.spec.srmath import (
    MAX_OUTPUT_PIXELS,
    STEP_WARNING,
    head_band_rows,
    sr_output_size,
    sr_pass_sizes,
    sr_request_problems,
    sr_schedule,
    step_mismatch,
)
from engine.sr.head import SRHead, SRNet

MAX_VARIANTS = 16
DEFAULT_MEMORY_BUDGET = 256 * 2**20  # bytes of head activations at once: a 1000x668 output runs in 3 bands


def super_resolve(
    model: TrainedModel,
    head: SRHead,
    factor: float | None = None,
    n: int = 1,
    *,
    rng: torch.Generator | None = None,
    noise_scale: float = 1.0,
    source: torch.Tensor | None = None,
    max_output_pixels: int = MAX_OUTPUT_PIXELS,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> torch.Tensor:
    """Enlarge the model's top image (or `source`) by `factor` (default: the head's sr_train).

    source: None (the model's top training image) or [1, 3, h, w] in [-1, 1], e.g. one of its samples.
    Returns [n, 3, ⌊f·h⌋, ⌊f·w⌋] in [-1, 1] on the model's device. `noise_scale` multiplies the head's
    noise amplitude (0: deterministic). Warns when the factor's step is more than 5 % from the trained one.
    """
    start = _start_image(model, source)  # [1, 3, h, w]
    height, width = start.shape[-2:]
    factor = head.sr_train if factor is None else factor
    problems = sr_request_problems(height, width, factor, max_output_pixels)
    if problems:
        raise ValueError(problems[0])
    if not 1 <= n <= MAX_VARIANTS:
        raise ValueError(f"n must be between 1 and {MAX_VARIANTS}, got {n}")
    if not (math.isfinite(noise_scale) and noise_scale >= 0):
        raise ValueError(f"noise_scale must be a finite number >= 0, not {noise_scale}")
    if step_mismatch(factor, head.sr_train) > STEP_WARNING:
        warnings.warn(
            f"x{factor:g} runs steps of {sr_schedule(factor)[1]:.4f}; the head was trained for "
            f"{sr_schedule(head.sr_train)[1]:.4f} (x{head.sr_train:g})",
            stacklevel=2,
        )
    device = start.device
    if head.device != device:
        raise ValueError(
            f"the head is on {head.device} but the model is on {device}: load both on one device"
        )
    rng = rng if rng is not None else make_rng(0, device)
    seeds = torch.randint(0, 2**62, (n,), generator=rng, device=rng.device).tolist()
    variant_rngs = [make_rng(int(seed), device) for seed in seeds]
    head.net.eval()
    with torch.inference_mode():
        image = _passes(head, start.expand(n, -1, -1, -1), factor, noise_scale, variant_rngs, memory_budget)
    out_h, out_w = sr_output_size(height, width, factor)
    return image[:, :, :out_h, :out_w].clamp(-1, 1)


def _passes(
    head: SRHead,
    image: torch.Tensor,
    factor: float,
    noise_scale: float,
    variant_rngs: list[torch.Generator],
    memory_budget: int,
) -> torch.Tensor:
    """SinGAN's K passes: [n, 3, h, w] -> [n, 3, H_K, W_K] (before the crop); variant i's noise from rng i."""
    _, step, _ = sr_schedule(factor)
    amplitude = head.noise_amp * noise_scale
    for size in sr_pass_sizes(image.shape[2], image.shape[3], factor):
        upsampled = resize_to(quantize(image), size, (step, step)).clamp(-1, 1)  # [n, 3, H_j, W_j]
        noise = torch.cat([torch.randn((1, 3, *size), generator=g, device=g.device) for g in variant_rngs])
        image = apply_head(head.net, upsampled, noise, amplitude, memory_budget)
    return image


def apply_head(
    net: SRNet, image: torch.Tensor, noise: torch.Tensor, amplitude: float, memory_budget: int
) -> torch.Tensor:
    """psi_SR(u, z, a) in bands of rows whose activations fit `memory_budget` bytes.

    image, noise: [n, 3, H, W] -> [n, 3, H, W]; equal to `net(image, noise, amplitude)` up to float
    rounding (the convs see the same inputs, only cut differently)."""
    batch, _, height, width = image.shape
    rows = head_band_rows(height, width, net.channels, batch, memory_budget)
    net_input = net.net_input(image, noise, amplitude)  # [n, 3, H + 2p, W + 2p]
    if rows == height:
        return image + net.residual(net_input)
    out = torch.empty_like(image)
    margin = 2 * net.padding
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        band = net.residual(net_input[:, :, top : bottom + margin])
        out[:, :, top:bottom] = image[:, :, top:bottom] + band
    return out


def _start_image(model: TrainedModel, source: torch.Tensor | None) -> torch.Tensor:
    if source is None:
        return model.reals[-1]
    if source.dim() != 4 or source.shape[0] != 1 or source.shape[1] != 3:
        raise ValueError(f"source must be [1, 3, H, W], got {list(source.shape)}")
    if min(source.shape[-2:]) < 2:
        raise ValueError(f"source is too small: {list(source.shape)}")
    if not torch.isfinite(source).all() or source.min() < -1.0001 or source.max() > 1.0001:
        raise ValueError("source values must be finite and in [-1, 1]")
    return source.to(model.device, torch.float32)
