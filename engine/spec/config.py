"""Training configuration: one frozen dataclass, the paper's numbers as defaults, and the words a request uses.

`TrainConfig.for_mode(mode)` gives the original's defaults for a mode; `TrainConfig.preset(name, mode)` adds
the named preset (`paper` = those defaults, `quick` = a CPU run of about two minutes); `request_config(params)`
turns a request's fields (the CLI's flags, the service's form fields) into the config it trains with.

Plain Python (part of `engine.spec`): the service's core resolves and checks requests with it, without torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

Mode = Literal["generation", "retarget", "animation", "harmonization", "editing"]
MODES: tuple[Mode, ...] = ("generation", "retarget", "animation", "harmonization", "editing")
Preset = Literal["paper", "quick"]
PRESETS: tuple[Preset, ...] = ("paper", "quick")
# How a harmonization is blended into the naive image (engine/harmonization.py): "detail" keeps the naive
# image's own fine detail at full resolution, "render" upsamples the model's rendering (the original's).
Composite = Literal["detail", "render"]
COMPOSITES: tuple[Composite, ...] = ("detail", "render")
DEFAULT_COMPOSITE: Composite = "detail"
# Bounds every config is checked against (`TrainConfig.problems`); the service's API publishes these very ones.
TRAIN_STAGES_RANGE = (2, 12)
ITERS_PER_STAGE_RANGE = (1, 20000)
IMAGE_SIZE_RANGE = (16, 1024)  # min_size and max_size, px
# What a request may set on top of a preset (the CLI's flags, the service's form fields): `TrainConfig.requested`.
REQUEST_FIELDS = ("train_stages", "iters_per_stage", "lr_scale", "max_size", "min_size")


class JsonConfig:
    """`replace`, and a JSON round trip (checkpoints store configs as JSON) for the engine's frozen configs:
    tuples travel as lists, and an unknown field is an error, never silently dropped."""

    WHAT = "config"  # for the error message

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {name: list(value) if isinstance(value, tuple) else value for name, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - set(fields)
        if unknown:
            raise ValueError(f"unknown {cls.WHAT} fields: {sorted(unknown)}")
        values = {name: tuple(value) if isinstance(value, list) else value for name, value in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    WHAT = "training config"
    mode: Mode = "generation"  # decides the pyramid, the noise shapes and the stage-0 input
    train_stages: int = 6  # number of pyramid stages, coarsest to the full (max_size) image
    iters_per_stage: int = 2000  # optimisation steps at every stage
    max_size: int = 250  # the longer side of the top-stage image is at most this (never upsampled)
    min_size: int = 25  # the shorter side of the coarsest stage
    train_depth: int = 3  # how many of the newest generator bodies train together
    lr: float = 5e-4  # Adam learning rate of the newest body, the tail and both discriminator parts
    lr_scale: float = 0.1  # each body below the newest trains at lr * lr_scale**depth
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas for both networks
    lr_decay_at: float = 0.8  # fraction of a stage's iterations after which both lrs drop x0.1
    discriminator_steps: int = 3  # critic updates per iteration, all on the same noise
    generator_steps: int = 3  # optimizer.step() calls per iteration on ONE gradient (the original's quirk)
    gradient_penalty_weight: float = 0.1  # WGAN-GP weight
    reconstruction_weight: float = 10.0  # alpha: weight of MSE(G(z_rec), real) in the generator loss
    noise_amp_scale: float = 0.1  # amp[s] = noise_amp_scale * RMSE(reconstruction, stage image)
    channels: int = 64  # feature channels of every conv block
    kernel_size: int = 3  # conv kernel size (convs have no padding)
    num_layers: int = 3  # conv blocks per generator body and per discriminator (plus head and tail)
    leaky_slope: float = 0.05  # LeakyReLU negative slope (harmonization uses 0.3)
    batch_norm: bool = False  # BatchNorm in the generator's blocks (harmonization and editing use it)
    label: str = field(default="", compare=False)  # free text for logs, e.g. the preset's name

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    def problems(self) -> list[str]:
        out = []
        if self.mode not in MODES:
            out.append(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        low, high = TRAIN_STAGES_RANGE
        if not low <= self.train_stages <= high:
            out.append(f"train_stages must be between {low} and {high}, not {self.train_stages}")
        low, high = ITERS_PER_STAGE_RANGE
        if not low <= self.iters_per_stage <= high:
            out.append(f"iters_per_stage must be between {low} and {high}, not {self.iters_per_stage}")
        low, high = IMAGE_SIZE_RANGE
        if not low <= self.min_size <= self.max_size:
            out.append(
                f"need {low} <= min_size <= max_size, got min_size={self.min_size} max_size={self.max_size}"
            )
        if self.max_size > high:
            out.append(f"max_size must be at most {high}, not {self.max_size}")
        if self.train_depth < 1:
            out.append(f"train_depth must be at least 1, not {self.train_depth}")
        if not 0.0 < self.lr_scale <= 1.0:
            out.append(f"lr_scale must be in (0, 1], not {self.lr_scale}")
        if self.lr <= 0:
            out.append(f"lr must be positive, not {self.lr}")
        return out

    @property
    def last_stage(self) -> int:
        return self.train_stages - 1

    @property
    def feature_noise(self) -> bool:
        """Generation/animation feed padded 64-channel noise and enlarge-then-crop (spec §2)."""
        return self.mode in ("generation", "animation")

    @classmethod
    def for_mode(cls, mode: Mode, **overrides: Any) -> TrainConfig:
        """The original implementation's defaults for `mode` (spec §1, §5)."""
        base: dict[str, Any] = {"mode": mode}
        if mode == "animation":
            base.update(min_size=20)
        elif mode == "harmonization":
            base.update(train_stages=3, min_size=120, iters_per_stage=1000, leaky_slope=0.3, batch_norm=True)
        elif mode == "editing":
            base.update(iters_per_stage=1000, batch_norm=True)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def preset(cls, name: Preset, mode: Mode = "generation", **overrides: Any) -> TrainConfig:
        """`paper`: the published defaults. `quick`: a 64-px image, 4 stages x 400 iterations and 32
        channels, so a CPU training ends in about two minutes; its samples are rough previews."""
        if name == "paper":
            return cls.for_mode(mode, label="paper", **overrides)
        if name == "quick":
            # 32 channels (SinGAN's width) cost ~3.5x less than 64; measured on colusseum.png: 187 s on one
            # busy CPU core, about 2 minutes on two. 120 iterations at 64 channels gave formless samples.
            quick: dict[str, Any] = {
                "max_size": 64,
                "iters_per_stage": 400,
                "train_stages": 4,
                "channels": 32,
            }
            quick["label"] = "quick"
            if mode == "harmonization":
                # all three stages sit near the top size (geometric pyramid, min_size 120 in the paper)
                quick.update(max_size=64, min_size=32, train_stages=3, iters_per_stage=200)
            elif mode == "animation":
                quick.update(min_size=20)
            quick.update(overrides)
            return cls.for_mode(mode, **quick)
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {name!r}")

    @classmethod
    def requested(cls, preset: Preset = "paper", mode: Mode = "generation", **overrides: Any) -> TrainConfig:
        """A preset with what a request sets (`REQUEST_FIELDS`): the one mapping the CLI, the service's worker
        and the service's upload check share. A `max_size` below the preset's `min_size` pulls `min_size`
        down with it unless the request sets `min_size` too (max_size=20 with quick's 25 trains at 20)."""
        unknown = set(overrides) - set(REQUEST_FIELDS)
        if unknown:
            raise ValueError(f"a request cannot set {', '.join(sorted(unknown))}")
        if "max_size" in overrides and "min_size" not in overrides:
            overrides["min_size"] = min(cls.preset(preset, mode).min_size, overrides["max_size"])
        return cls.preset(preset, mode, **overrides)


def request_config(params: Mapping[str, Any]) -> TrainConfig:
    """A request's fields -> the config it trains with: `preset` (default paper) and `mode` (default
    generation), plus whichever `REQUEST_FIELDS` it sets; other keys are not the training's and are ignored.
    Raises ValueError, saying what is wrong, for a preset, mode or value the engine refuses."""
    overrides = {name: params[name] for name in REQUEST_FIELDS if name in params}
    return TrainConfig.requested(params.get("preset", "paper"), params.get("mode", "generation"), **overrides)
