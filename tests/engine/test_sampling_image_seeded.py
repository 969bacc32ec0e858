"""Samples of harmonization and editing models start from their augmented image, as the original's
`generate_samples` (training_harmonization_editing.py) draws them, never from noise at stage 0 (spec §5)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import engine
from engine import sampling
from engine.model import TrainedModel
from tests.engine.conftest import tiny_config


@pytest.fixture(scope="module")
def harmonization(image: torch.Tensor) -> TrainedModel:
    return engine.train(image, tiny_config(mode="harmonization"), rng=engine.make_rng(0))


@pytest.fixture(scope="module")
def editing(image: torch.Tensor) -> TrainedModel:
    return engine.train(image, tiny_config(mode="editing"), rng=engine.make_rng(0))


def stage0_inputs(monkeypatch: pytest.MonkeyPatch, model: TrainedModel, **kwargs: Any) -> torch.Tensor:
    """What `engine.sample` feeds the generator at stage 0: [n, 3, H0, W0]."""
    seen: list[torch.Tensor] = []
    real = sampling.generate

    def spy(model: TrainedModel, noise: list[torch.Tensor], shapes: list[tuple[int, int]]) -> torch.Tensor:
        seen.append(noise[0].clone())
        return real(model, noise, shapes)

    monkeypatch.setattr(sampling, "generate", spy)
    out = engine.sample(model, rng=engine.make_rng(3), **kwargs)
    assert out.shape[0] == kwargs.get("n", 1)
    return seen[0]


def unchanged_share(inputs: torch.Tensor, real0: torch.Tensor) -> torch.Tensor:
    """Per sample, the share of stage-0 pixels equal to the training image's (cut-out holes change a few)."""
    return ((inputs - real0).abs().amax(dim=1) < 1e-5).float().mean(dim=(1, 2))


def test_a_harmonization_models_samples_start_from_its_augmented_image(
    harmonization: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = stage0_inputs(monkeypatch, harmonization, n=8)
    real0 = harmonization.reals[0]
    # a colour transform (p = 0.25) changes every pixel; otherwise only the holes differ from the image
    assert (unchanged_share(inputs, real0) > 0.5).sum() >= 3
    assert not torch.equal(inputs[0], inputs[1])  # each sample its own augmentation
    assert inputs.min() >= -1 - 1e-5 and inputs.max() <= 1 + 1e-5  # an image, not N(0, 1) noise


def test_an_editing_models_samples_start_from_shuffled_patches_plus_a_little_noise(
    editing: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = stage0_inputs(monkeypatch, editing, n=4)
    residual = inputs - editing.reals[0]
    # most pixels are the image + 0.1 x noise: the residual's typical size is the noise's, 0.1
    assert float(residual.abs().median()) == pytest.approx(0.1 * 0.674, rel=0.35)


def test_generation_samples_still_start_from_noise(
    trained: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = stage0_inputs(monkeypatch, trained, n=4)
    assert float(inputs.std()) == pytest.approx(1.0, rel=0.2)


def test_image_seeded_samples_are_reproducible_at_another_size(harmonization: TrainedModel) -> None:
    a = engine.sample(harmonization, n=2, rng=engine.make_rng(9), scale=(1.5, 1.25))
    b = engine.sample(harmonization, n=2, rng=engine.make_rng(9), scale=(1.5, 1.25))
    height, width = harmonization.stage_shapes[-1]
    assert torch.equal(a, b) and a.shape == (2, 3, int(height * 1.5), int(width * 1.25))
