"""A training request's words -> the engine's config, and the pyramid it gives an image: torch-free.

The worker trains with `training_config(model.params)`; the API answers "what will the model see?"
(`GET /v1/pyramid`) with the same function and the engine's own geometry, so the page's preview and the
training cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config import TrainConfig
from engine.geometry import check_image_size, stage_sizes

# request params that override the preset's value (the rest of a config is the preset's)
CONFIG_FIELDS = ("train_stages", "iters_per_stage", "lr_scale", "max_size", "min_size")


def training_config(params: dict[str, Any]) -> TrainConfig:
    """The API's request params -> the engine's config. Raises ValueError with the engine's reasons."""
    preset, mode = params.get("preset", "paper"), params.get("mode", "generation")
    overrides = {name: params[name] for name in CONFIG_FIELDS if name in params}
    if "max_size" in overrides and "min_size" not in overrides:
        # A small max_size must not fall below the preset's own min_size (e.g. max_size=20 with quick's 25).
        overrides["min_size"] = min(TrainConfig.preset(preset, mode).min_size, overrides["max_size"])
    return TrainConfig.preset(preset, mode=mode, **overrides)


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
