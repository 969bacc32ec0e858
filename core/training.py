"""A training request's words -> the engine's config, and the pyramid it gives an image: torch-free.

The worker trains with `training_config(model.params)`; the API answers "what will the model see?"
(`GET /v1/pyramid`) with the same function and the engine's own geometry, so the page's preview and the
training cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.config import REQUEST_FIELDS, TrainConfig
from engine.geometry import check_image_size, stage_sizes


def training_config(params: Mapping[str, Any]) -> TrainConfig:
    """A train request's params -> the engine's config: what the worker trains, what the upload is checked
    against, and what the page previews. Raises ValueError with the engine's reasons."""
    overrides = {name: params[name] for name in REQUEST_FIELDS if name in params}
    return TrainConfig.requested(params.get("preset", "paper"), params.get("mode", "generation"), **overrides)


@dataclass(frozen=True)
class Pyramid:
    config: TrainConfig
    stage_sizes: list[
        tuple[int, int]
    ]  # (H, W) of every stage, coarsest first; the last is what the model sees


def pyramid(width: int, height: int, params: dict[str, Any]) -> Pyramid:
    """The stages a training with `params` builds for a width x height image. Raises ValueError (the
    engine's words) for params the engine refuses and for an image the pyramid cannot be built from."""
    cfg = training_config(params)
    check_image_size(height, width, cfg)
    return Pyramid(cfg, stage_sizes(height, width, cfg))
