from __future__ import annotations

import pytest
import torch

import engine
from engine import TrainedModel


def test_samples_have_the_training_shape_and_range(trained: TrainedModel) -> None:
    samples = engine.sample(trained, 5, rng=engine.make_rng(0))
    height, width = trained.stage_shapes[-1]
    assert samples.shape == (5, 3, height, width)
    assert samples.min() >= -1 and samples.max() <= 1
    assert not torch.equal(samples[0], samples[1])


def test_same_seed_same_samples_other_seed_other_samples(trained: TrainedModel) -> None:
    a = engine.sample(trained, 3, rng=engine.make_rng(7))
    b = engine.sample(trained, 3, rng=engine.make_rng(7))
    c = engine.sample(trained, 3, rng=engine.make_rng(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_batch_equals_one_at_a_time(trained: TrainedModel) -> None:
    # one forward for n samples must mean the same as n forwards: nothing couples the batch
    rng = engine.make_rng(3)
    batch = engine.sample(trained, 2, rng=rng)
    noise = engine.noise.draw_inputs(trained.stage_shapes, trained.config, engine.make_rng(3), batch=2)
    single = engine.sampling.generate(trained, [z[1:] for z in noise], trained.stage_shapes)
    assert torch.allclose(batch[1:], single, atol=1e-5)


@pytest.mark.parametrize("fixture", ["trained", "trained_retarget"])
def test_retarget_to_one_and_a_half_width(fixture: str, request: pytest.FixtureRequest) -> None:
    model: TrainedModel = request.getfixturevalue(fixture)
    height, width = model.stage_shapes[-1]
    samples = engine.sample(model, 2, rng=engine.make_rng(0), scale=(1.0, 1.5))
    assert samples.shape == (2, 3, height, int(width * 1.5))
    taller = engine.sample(model, 1, rng=engine.make_rng(0), scale=(2.0, 0.75))
    assert taller.shape == (1, 3, height * 2, int(width * 0.75))


def test_start_stage_fixes_the_coarse_stages(trained: TrainedModel) -> None:
    fixed = engine.sample(trained, 4, rng=engine.make_rng(0), start_stage=1)
    free = engine.sample(trained, 4, rng=engine.make_rng(0), start_stage=0)
    assert fixed.std(dim=0).mean() < free.std(dim=0).mean()
    scaled = engine.sample(trained, 2, rng=engine.make_rng(0), start_stage=1, scale=(1.0, 1.5))
    assert scaled.shape[-1] == int(trained.stage_shapes[-1][1] * 1.5)


def test_bad_sampling_arguments_are_clear_errors(trained: TrainedModel) -> None:
    with pytest.raises(ValueError, match="start_stage"):
        engine.sample(trained, 1, start_stage=5)
    with pytest.raises(ValueError, match="scale"):
        engine.sample(trained, 1, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="n must"):
        engine.sample(trained, 0)


def test_animation_is_a_smooth_walk(trained: TrainedModel) -> None:
    frames = engine.animate(trained, 6, rng=engine.make_rng(0), alpha=0.1, beta=0.9)
    assert frames.shape == (6, 3, *trained.stage_shapes[-1])
    step = (frames[1:] - frames[:-1]).abs().mean()
    unrelated = (engine.sample(trained, 2, rng=engine.make_rng(1)).diff(dim=0)).abs().mean()
    assert step < unrelated
    gif = engine.frames_to_gif(frames, fps=10)
    assert gif[:6] == b"GIF89a"


def test_reconstruction_reproduces_its_input_shape(trained: TrainedModel) -> None:
    assert engine.reconstruct(trained).shape == trained.reals[-1].shape
