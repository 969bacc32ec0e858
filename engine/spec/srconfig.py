"""The SR head's training configuration: one frozen dataclass, SinGAN's finest-scale numbers as defaults.

`SRConfig.preset(name)` follows `TrainConfig.preset`: `paper` = SinGAN's numbers with our default width,
`quick` = a CPU preview that fits the quick ConSinGAN preset, `tiny` = the CPU test's head. Plain Python (in
`engine.spec`): the service's core reads a head's iterations and width from here, as the worker trains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.spec.config import JsonConfig
from engine.spec.srmath import SR_FACTOR_DEFAULT, SR_FACTOR_MAX, SR_FACTOR_MIN

SRPreset = Literal["paper", "quick", "tiny"]
SR_ITERATIONS_RANGE = (1, 20000)
SR_PRESETS: tuple[SRPreset, ...] = ("paper", "quick", "tiny")
AdversarialSource = Literal["samples", "real"]
DiscriminatorInit = Literal["model", "fresh"]


@dataclass(frozen=True)
class SRConfig(JsonConfig):
    WHAT = "SR head config"
    sr_train: float = SR_FACTOR_DEFAULT  # the head learns the step of this factor: sr_train^(1/K)
    iterations: int = 2000  # SinGAN's iterations per scale
    alpha: float = 100.0  # reconstruction weight; SinGAN SR's (plain training uses 10)
    channels: int = 64  # width of the head's convs (SinGAN's finest scale: 128 with BatchNorm)
    body_layers: int = 3  # convs between the first and the last: 5 convs in all, as SinGAN's generators
    leaky_slope: float = 0.05  # LeakyReLU slope, ConSinGAN's (SinGAN: 0.2)
    batch_norm: bool = False  # BatchNorm after the inner convs (SinGAN has it; eval statistics at inference)
    lr: float = 5e-4  # Adam learning rate of the head and of the critic
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas for both networks
    lr_decay_at: float = 0.8  # both lrs drop x0.1 after round(lr_decay_at * iterations) (SinGAN: 1600/2000)
    discriminator_steps: int = 3  # critic updates per iteration
    generator_steps: int = 1  # head updates per iteration, each on a fresh loss (SinGAN: 3; measured worse)
    gradient_penalty_weight: float = 0.1  # WGAN-GP weight
    noise_amp_scale: float = 0.1  # a = noise_amp_scale * RMSE(u_rec, x)
    adversarial_source: AdversarialSource = "samples"  # what the head enlarges for the critic: see decisions
    discriminator_init: DiscriminatorInit = "fresh"  # a new critic; "model": a copy of the top-stage critic
    label: str = field(default="", compare=False)  # free text for logs, e.g. the preset's name

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("invalid SR head config: " + "; ".join(problems))

    def problems(self) -> list[str]:
        out = []
        if not (math.isfinite(self.sr_train) and SR_FACTOR_MIN < self.sr_train <= SR_FACTOR_MAX):
            out.append(f"sr_train must be larger than 1 and at most {SR_FACTOR_MAX:g}, not {self.sr_train}")
        low, high = SR_ITERATIONS_RANGE
        if not low <= self.iterations <= high:
            out.append(f"iterations must be between {low} and {high}, not {self.iterations}")
        if self.alpha < 0:
            out.append(f"alpha must not be negative, not {self.alpha}")
        if not 4 <= self.channels <= 256:
            out.append(f"channels must be between 4 and 256, not {self.channels}")
        if not 0 <= self.body_layers <= 8:
            out.append(f"body_layers must be between 0 and 8, not {self.body_layers}")
        if self.lr <= 0:
            out.append(f"lr must be positive, not {self.lr}")
        if self.discriminator_steps < 1 or self.generator_steps < 1:
            out.append("discriminator_steps and generator_steps must be at least 1")
        if self.adversarial_source not in ("samples", "real"):
            out.append(f"adversarial_source must be samples or real, not {self.adversarial_source!r}")
        if self.discriminator_init not in ("model", "fresh"):
            out.append(f"discriminator_init must be model or fresh, not {self.discriminator_init!r}")
        return out

    @property
    def num_convs(self) -> int:
        return self.body_layers + 2

    @classmethod
    def preset(cls, name: SRPreset, **overrides: Any) -> SRConfig:
        """`paper`: 2000 iterations, 64 channels. `quick`: for quick-preset models (64 px, 32 channels),
        600 iterations, 1-2 minutes on a busy CPU. `tiny`: the CPU test's head (300 iterations, 3 generator
        steps, about 25 s of one core)."""
        values: dict[str, Any]
        if name == "paper":
            values = {}
        elif name == "quick":
            values = {"iterations": 600, "channels": 32}
        elif name == "tiny":
            # what the CPU test's thresholds were measured with (docs/superres.md): 3 generator steps, as at
            # 300 iterations one step has not left the blurry reconstruction regime (1.1x bicubic's
            # sharpness on the test photo), and the model's critic
            values = {"iterations": 300, "channels": 32, "generator_steps": 3, "discriminator_init": "model"}
        else:
            raise ValueError(f"preset must be one of {', '.join(SR_PRESETS)}, not {name!r}")
        values["label"] = name
        values.update(overrides)
        return cls(**values)


def head_preset(training_preset: str) -> SRPreset:
    """The head preset that fits a model trained with `training_preset`: a quick model gets a quick head, any
    other the paper's."""
    return "quick" if training_preset == "quick" else "paper"
