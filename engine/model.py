"""A trained (or partly trained) ConSinGAN: networks plus everything sampling and resuming need."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.networks import Discriminator, Generator
from engine.spec.config import TrainConfig


@dataclass
class TrainedModel:
    """Mutable only while training; callers treat it as a value.

    `reals`, `fixed_noise` and `noise_amp` have one entry per finished stage; the generator has one body
    per finished stage. A model with `stages_done < num_stages` is a snapshot that `train(resume=...)`
    continues.
    """

    config: TrainConfig
    generator: Generator
    discriminator: Discriminator  # the newest stage's critic, kept for resuming and fine-tuning
    reals: list[torch.Tensor]  # the whole pyramid: [1, 3, H_k, W_k] in [-1, 1], coarsest first
    fixed_noise: list[torch.Tensor]  # z_rec per finished stage: G(z_rec) reconstructs the image
    noise_amp: list[float]  # per finished stage; amp[0] = 1

    @property
    def num_stages(self) -> int:
        return self.config.train_stages

    @property
    def stages_done(self) -> int:
        return len(self.fixed_noise)

    @property
    def is_complete(self) -> bool:
        return self.stages_done == self.num_stages

    @property
    def stage_shapes(self) -> list[tuple[int, int]]:
        """(H, W) of every stage of the pyramid, finished or not."""
        return [(int(r.shape[2]), int(r.shape[3])) for r in self.reals]

    @property
    def device(self) -> torch.device:
        return self.reals[-1].device

    @property
    def image(self) -> torch.Tensor:
        """The image this model reproduces: [1, 3, H, W] at the newest finished stage."""
        return self.reals[self.stages_done - 1]

    def to(self, device: torch.device | str) -> TrainedModel:
        self.generator.to(device)
        self.discriminator.to(device)
        self.reals = [r.to(device) for r in self.reals]
        self.fixed_noise = [z.to(device) for z in self.fixed_noise]
        return self
