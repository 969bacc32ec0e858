from __future__ import annotations

import torch

from engine import TrainConfig
from engine.networks import Discriminator, Generator
from engine.noise import draw_inputs, make_rng


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_generator_has_the_originals_668227_parameters_at_six_stages() -> None:
    generator = Generator(TrainConfig())
    for _ in range(5):
        generator.grow()
    assert count(generator) == 1_792 + 6 * 110_784 + 1_731 == 668_227


def test_discriminator_has_113153_parameters() -> None:
    assert count(Discriminator(TrainConfig())) == 113_153


def test_growing_copies_the_newest_body() -> None:
    generator = Generator(TrainConfig())
    generator.grow()
    old, new = generator.body[0], generator.body[1]
    assert all(torch.equal(a, b) for a, b in zip(old.parameters(), new.parameters(), strict=True))
    assert all(a is not b for a, b in zip(old.parameters(), new.parameters(), strict=True))


def test_initialisation_follows_the_original() -> None:
    generator = Generator(TrainConfig(batch_norm=True))
    weights = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(torch.equal(n.bias, torch.zeros_like(n.bias)) for n in norms)


def test_discriminator_output_is_a_patch_map() -> None:
    scores = Discriminator(TrainConfig())(torch.zeros(2, 3, 25, 38))
    assert scores.shape == (2, 1, 25 - 10, 38 - 10)


def test_generator_output_matches_the_top_stage_in_every_mode() -> None:
    shapes = [(25, 38), (31, 47), (41, 61)]
    for mode in ("generation", "retarget", "animation", "harmonization", "editing"):
        cfg = TrainConfig.for_mode(mode)  # type: ignore[arg-type]
        generator = Generator(cfg)
        generator.grow()
        generator.grow()
        noise = draw_inputs(shapes, cfg, make_rng(0), batch=2)
        expected_margin = 6 if mode in ("generation", "animation") else 0
        assert noise[1].shape == (2, 64, 31 + expected_margin, 47 + expected_margin)
        out = generator(noise, shapes, [1.0, 0.1, 0.1])
        assert out.shape == (2, 3, 41, 61), mode
        assert out.abs().max() <= 1
