"""Pyramid geometry without torch: how many stages, at which sizes (spec §1).

Sizes only, no pixels: the pyramid builder (`engine/pyramid.py`) and anyone asking "will this image train?"
(`check_image_size`: the CLI's, and the service's before it stores an upload) share it.

Generation-like modes place their stages on a log-spaced schedule (more of them at low resolution than a
geometric pyramid would); harmonization keeps the plain geometric one.
"""

from __future__ import annotations

import math

from engine.spec.config import TrainConfig


def output_length(in_length: int, scale: float) -> int:
    """MATLAB imresize's output size for one axis."""
    return math.ceil(in_length * scale)


def top_scale(height: int, width: int, max_size: int) -> float:
    """Scale of the top stage: fit the longer side into max_size, never upsample."""
    return min(max_size / max(height, width), 1.0)


def stage_scales(top_height: int, top_width: int, cfg: TrainConfig) -> list[float]:
    """Scale of every stage relative to the top-stage image, coarsest first; the last one is 1."""
    last = cfg.last_stage
    scale_factor = math.pow(cfg.min_size / min(top_height, top_width), 1 / last)
    scales = []
    for i in range(last):
        if cfg.mode == "harmonization":
            exponent = float(last - i)
        else:
            exponent = _spacing(last) * math.log(last - i) + 1
        scales.append(math.pow(scale_factor, exponent))
    return [*scales, 1.0]


def _spacing(last: int) -> float:
    # (last - 1) / ln(last) is 0/0 for a 2-stage model, where the original crashes; its limit at 1 is 1,
    # which makes the 2-stage pyramid geometric.
    return 1.0 if last == 1 else (last - 1) / math.log(last)


def stage_sizes(height: int, width: int, cfg: TrainConfig) -> list[tuple[int, int]]:
    """(H, W) of every stage for an input of height x width, coarsest first, without resizing anything."""
    scale1 = top_scale(height, width, cfg.max_size)
    top = (output_length(height, scale1), output_length(width, scale1))
    return [(output_length(top[0], s), output_length(top[1], s)) for s in stage_scales(*top, cfg)]


def check_image_size(height: int, width: int, cfg: TrainConfig) -> None:
    """Raise ValueError, saying what to change, when the pyramid for this image would need upsampling or
    degenerate stages."""
    sizes = stage_sizes(height, width, cfg)
    top_h, top_w = sizes[-1]
    if min(top_h, top_w) < cfg.min_size:
        if (top_h, top_w) == (height, width):  # not scaled down: the image itself is too small
            raise ValueError(
                f"the image is {width}x{height}: its shorter side is below min_size={cfg.min_size} px, the "
                "coarsest stage's; send a larger image or a smaller min_size"
            )
        longest = cfg.max_size / cfg.min_size
        raise ValueError(
            f"the image is {width}x{height}: at max_size={cfg.max_size} it trains at {top_w}x{top_h}, whose "
            f"shorter side is below min_size={cfg.min_size} px, the coarsest stage's; send an image closer to "
            f"square (at most about {longest:.2g}:1 at these sizes), a larger max_size or a smaller min_size"
        )
    if len(set(sizes)) < len(sizes):
        raise ValueError(
            f"the image is {width}x{height}: too small for {cfg.train_stages} stages (stage sizes {sizes} "
            "repeat); use fewer stages or a larger image"
        )
