"""Shared tiny models for the engine tests: CPU, 32 px, 2 stages, a few iterations."""

from __future__ import annotations

import math

import pytest
import torch

import engine
from engine import TrainConfig, TrainedModel


def synthetic_image(height: int = 40, width: int = 48, seed: int = 0) -> torch.Tensor:
    """A smooth scene with a few blobs: [1, 3, H, W] in [-1, 1]."""
    rows = torch.linspace(0, 1, height)[:, None]
    cols = torch.linspace(0, 1, width)[None, :]
    red = torch.sin(3 * math.pi * cols) * 0.5 + rows * 0.4
    green = torch.cos(2 * math.pi * rows) * 0.4 - cols * 0.3
    generator = torch.Generator().manual_seed(seed)
    blue = torch.zeros(height, width)
    for _ in range(3):
        cy, cx = torch.rand(2, generator=generator)
        blue += 0.8 * torch.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / 0.01)
    image = torch.stack([red, green, blue - 0.5]).clamp(-1, 1)
    return image.unsqueeze(0)


def checkerboard(height: int, width: int, cell: int = 2) -> torch.Tensor:
    """[H, W] of 0 and 1 in cell x cell squares: detail at the finest scale, with sharp edges."""
    rows = torch.arange(height)[:, None] // cell
    cols = torch.arange(width)[None, :] // cell
    return ((rows + cols) % 2).float()


def tiny_config(**overrides: object) -> TrainConfig:
    values: dict = {"train_stages": 2, "iters_per_stage": 8, "max_size": 32, "min_size": 16}
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def image() -> torch.Tensor:
    return synthetic_image()


@pytest.fixture(scope="session")
def trained(image: torch.Tensor) -> TrainedModel:
    return engine.train(image, tiny_config(), rng=engine.make_rng(0))


@pytest.fixture(scope="session")
def trained_retarget(image: torch.Tensor) -> TrainedModel:
    return engine.train(image, tiny_config(mode="retarget"), rng=engine.make_rng(0))
