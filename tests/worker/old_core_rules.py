# TEMPORARY: core/training.py and core/sr_limits.py as they were before engine.spec (the transcription).
"""A training request's words -> the training config it resolves to, and the pyramid it gives an image.

The engine's rules (`TrainConfig.requested`, `engine/geometry.py`), written again for core, which never
imports the engine: the API refuses a request that could never train (and `GET /v1/pyramid` answers "what
will the model see?") with the rule the worker trains with. `tests/worker/test_worker_vocabulary.py` holds
this transcription to the engine, config field by config field and image size by image size.

A config here is the engine's `TrainConfig.to_dict()`: a JSON dict, what `models.train_config` stores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.worker.old_core_words import (
    IMAGE_SIZE_RANGE,
    ITERS_PER_STAGE_RANGE,
    MODES,
    PRESETS,
    REQUEST_FIELDS,
    SR_FACTOR_MAX,
    SR_FACTOR_MIN,
    SR_MAX_OUTPUT_SIDE,
    TRAIN_STAGES_RANGE,
)

Config = dict[str, Any]

# TrainConfig's defaults (the paper's numbers), then what each mode and each preset change, in that order.
DEFAULTS: Config = {
    "mode": "generation", "train_stages": 6, "iters_per_stage": 2000, "max_size": 250, "min_size": 25,
    "train_depth": 3, "lr": 5e-4, "lr_scale": 0.1, "betas": [0.5, 0.999], "lr_decay_at": 0.8,
    "discriminator_steps": 3, "generator_steps": 3, "gradient_penalty_weight": 0.1,
    "reconstruction_weight": 10.0, "noise_amp_scale": 0.1, "channels": 64, "kernel_size": 3, "num_layers": 3,
    "leaky_slope": 0.05, "batch_norm": False, "label": "",
}  # fmt: skip
MODE_VALUES: dict[str, Config] = {
    "animation": {"min_size": 20},
    "harmonization": {
        "train_stages": 3,
        "min_size": 120,
        "iters_per_stage": 1000,
        "leaky_slope": 0.3,
        "batch_norm": True,
    },
    "editing": {"iters_per_stage": 1000, "batch_norm": True},
}
PRESET_VALUES: dict[str, Config] = {
    "paper": {"label": "paper"},
    "quick": {"max_size": 64, "iters_per_stage": 400, "train_stages": 4, "channels": 32, "label": "quick"},
}
PRESET_MODE_VALUES: dict[tuple[str, str], Config] = {
    ("quick", "harmonization"): {"max_size": 64, "min_size": 32, "train_stages": 3, "iters_per_stage": 200},
    ("quick", "animation"): {"min_size": 20},
}


def resolve_training(params: Mapping[str, Any]) -> Config:
    """A train request's params -> its config. Raises ValueError with the engine's reasons."""
    preset, mode = params.get("preset", "paper"), params.get("mode", "generation")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    base = {
        **DEFAULTS,
        "mode": mode,
        **MODE_VALUES.get(mode, {}),
        **PRESET_VALUES[preset],
        **PRESET_MODE_VALUES.get((preset, mode), {}),
    }
    overrides = {name: params[name] for name in REQUEST_FIELDS if name in params}
    if "max_size" in overrides and "min_size" not in overrides:
        # a max_size below the preset's min_size pulls min_size down with it (max_size=20 with quick's 25)
        overrides["min_size"] = min(base["min_size"], overrides["max_size"])
    config = {**base, **overrides}
    problems = config_problems(config)
    if problems:
        raise ValueError("invalid training config: " + "; ".join(problems))
    return config


def config_problems(config: Config) -> list[str]:
    """The engine's checks of the fields a request can set (the others come from a preset)."""
    out = []
    if config["mode"] not in MODES:
        out.append(f"mode must be one of {', '.join(MODES)}, not {config['mode']!r}")
    for name, (low, high) in (
        ("train_stages", TRAIN_STAGES_RANGE),
        ("iters_per_stage", ITERS_PER_STAGE_RANGE),
    ):
        if not low <= config[name] <= high:
            out.append(f"{name} must be between {low} and {high}, not {config[name]}")
    low, high = IMAGE_SIZE_RANGE
    if not low <= config["min_size"] <= config["max_size"]:
        out.append(
            f"need {low} <= min_size <= max_size, got min_size={config['min_size']} max_size={config['max_size']}"
        )
    if config["max_size"] > high:
        out.append(f"max_size must be at most {high}, not {config['max_size']}")
    if not 0.0 < config["lr_scale"] <= 1.0:
        out.append(f"lr_scale must be in (0, 1], not {config['lr_scale']}")
    return out


def stage_sizes(height: int, width: int, config: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(H, W) of every stage for an input of height x width, coarsest first (MATLAB imresize's ceil)."""
    scale1 = min(config["max_size"] / max(height, width), 1.0)
    top = (math.ceil(height * scale1), math.ceil(width * scale1))
    return [(math.ceil(top[0] * s), math.ceil(top[1] * s)) for s in _stage_scales(*top, config)]


def _stage_scales(top_height: int, top_width: int, config: Mapping[str, Any]) -> list[float]:
    last = config["train_stages"] - 1
    scale_factor = math.pow(config["min_size"] / min(top_height, top_width), 1 / last)
    # generation-like modes: log-spaced (more stages low); harmonization: geometric. A 2-stage pyramid takes
    # the spacing's limit, 1, where the original divides by zero.
    spacing = 1.0 if last == 1 else (last - 1) / math.log(last)
    exponents = [
        float(last - i) if config["mode"] == "harmonization" else spacing * math.log(last - i) + 1
        for i in range(last)
    ]
    return [*(math.pow(scale_factor, e) for e in exponents), 1.0]


def check_image_size(height: int, width: int, config: Mapping[str, Any]) -> None:
    """Raise ValueError, saying what to change, when the pyramid would need upsampling or repeat a size."""
    sizes = stage_sizes(height, width, config)
    top_h, top_w = sizes[-1]
    min_size, max_size = config["min_size"], config["max_size"]
    if min(top_h, top_w) < min_size:
        if (top_h, top_w) == (height, width):  # not scaled down: the image itself is too small
            raise ValueError(
                f"the image is {width}x{height}: its shorter side is below min_size={min_size} px, the "
                "coarsest stage's; send a larger image or a smaller min_size"
            )
        raise ValueError(
            f"the image is {width}x{height}: at max_size={max_size} it trains at {top_w}x{top_h}, whose "
            f"shorter side is below min_size={min_size} px, the coarsest stage's; send an image closer to "
            f"square (at most about {max_size / min_size:.2g}:1 at these sizes), a larger max_size or a "
            "smaller min_size"
        )
    if len(set(sizes)) < len(sizes):
        raise ValueError(
            f"the image is {width}x{height}: too small for {config['train_stages']} stages (stage sizes "
            f"{sizes} repeat); use fewer stages or a larger image"
        )


def top_stage_size(height: int, width: int, config: Mapping[str, Any]) -> tuple[int, int]:
    """(H, W) a model trained with `config` (possibly partial: the rest are defaults) renders at."""
    return stage_sizes(height, width, {**DEFAULTS, **config})[-1]


@dataclass(frozen=True)
class Pyramid:
    config: Config
    stage_sizes: list[
        tuple[int, int]
    ]  # (H, W) of every stage, coarsest first; the last is what the model sees


def pyramid(width: int, height: int, params: Mapping[str, Any]) -> Pyramid:
    """The stages a training with `params` builds for a width x height image. Raises ValueError (the
    engine's words) for params the engine refuses and for an image the pyramid cannot be built from."""
    config = resolve_training(params)
    check_image_size(height, width, config)
    return Pyramid(config, stage_sizes(height, width, config))


# --- core/sr_limits.py at 7a771d4 ---
FLOOR_TOLERANCE = 1e-9  # 2.3 * 100 is 229.99999999999997 in floats: it must not lose a row


def sr_output_size(height: int, width: int, factor: float) -> tuple[int, int]:
    return (
        math.floor(factor * height + FLOOR_TOLERANCE),
        math.floor(factor * width + FLOOR_TOLERANCE),
    )


def sr_max_factor(height: int, width: int, max_output_pixels: int) -> float:
    """The largest factor (two decimals, rounded down, at most SR_FACTOR_MAX) whose output fits the caps."""
    by_pixels = math.sqrt(max_output_pixels / (height * width))
    by_side = SR_MAX_OUTPUT_SIDE / max(height, width)
    return min(math.floor(100 * min(by_pixels, by_side)) / 100, SR_FACTOR_MAX)


def sr_request_problems(height: int, width: int, factor: float, max_output_pixels: int) -> list[str]:
    """Why enlarging an h x w image by `factor` is refused; empty when it is allowed."""
    if not math.isfinite(factor):
        return [f"factor must be a finite number, not {factor!r}"]
    if not SR_FACTOR_MIN < factor <= SR_FACTOR_MAX:
        return [f"factor must be larger than {SR_FACTOR_MIN:g} and at most {SR_FACTOR_MAX:g}, not {factor:g}"]
    out_h, out_w = sr_output_size(height, width, factor)
    if out_h * out_w > max_output_pixels or max(out_h, out_w) > SR_MAX_OUTPUT_SIDE:
        return [
            f"output {out_w}x{out_h} is over the limit ({max_output_pixels:,} pixels, {SR_MAX_OUTPUT_SIDE} px "
            f"a side); the largest factor for this {width}x{height} image is "
            f"{sr_max_factor(height, width, max_output_pixels):g}"
        ]
    return []
