"""The image pyramid: every stage's image, resized from the top-stage image (spec §1).

The sizes come from `engine.spec.geometry` (no torch there, so the service's API checks uploads with the same rule).
"""

from __future__ import annotations

import torch

from engine.imresize import imresize
from engine.spec.config import TrainConfig
from engine.spec.geometry import check_image_size, stage_scales, top_scale

__all__ = ["build_pyramid", "check_image_size", "stage_scales", "top_scale"]


def build_pyramid(image: torch.Tensor, cfg: TrainConfig) -> list[torch.Tensor]:
    """image: [1, 3, H, W] in [-1, 1] (any size) -> one [1, 3, h_s, w_s] image per stage, coarsest first."""
    height, width = image.shape[-2:]
    check_image_size(height, width, cfg)
    top = imresize(image, top_scale(height, width, cfg.max_size))
    top_height, top_width = top.shape[-2:]
    scales = stage_scales(top_height, top_width, cfg)
    return [imresize(top, scale) for scale in scales[:-1]] + [top]
