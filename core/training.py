"""A training request as the service stores and shows it, by the engine's own rules (`engine.spec`).

Wrappers only, no rule of its own: `engine.spec.request_config` resolves a request's fields (preset, mode,
overrides) to the engine's `TrainConfig`, and `engine.spec.check_image_size` says whether an image trains;
this module turns the config into the JSON dict the service stores (`models.train_config`) and the API shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.spec import TrainConfig, check_image_size, request_config, stage_sizes

Config = dict[str, Any]  # a `TrainConfig.to_dict()`: what `models.train_config` stores


def resolve_training(params: Mapping[str, Any]) -> Config:
    """A train request's params -> its config as JSON. Raises ValueError with the engine's reasons."""
    return request_config(params).to_dict()


def top_stage_size(height: int, width: int, config: Mapping[str, Any]) -> tuple[int, int]:
    """(H, W) a model trained with `config` (a stored `train_config`; missing fields take the engine's
    defaults) renders at."""
    return stage_sizes(height, width, TrainConfig.from_dict(dict(config)))[-1]


@dataclass(frozen=True)
class Pyramid:
    config: Config
    # (H, W) of every stage, coarsest first; the last is what the model sees
    stage_sizes: list[tuple[int, int]]


def pyramid(width: int, height: int, params: Mapping[str, Any]) -> Pyramid:
    """The stages a training with `params` builds for a width x height image. Raises ValueError (the
    engine's words) for params the engine refuses and for an image the pyramid cannot be built from."""
    config = request_config(params)
    check_image_size(height, width, config)
    return Pyramid(config.to_dict(), stage_sizes(height, width, config))
