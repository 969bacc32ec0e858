from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import engine
from engine import Progress, TrainedModel, TrainingCanceled
from engine.networks import Discriminator
from engine.noise import noise_shape
from engine.steps import begin_stage, critic_loss, gradient_penalty, train_iteration
from engine.training import _start_or_resume
from tests.engine.conftest import tiny_config


def reconstruction_error(model: TrainedModel) -> float:
    return F.mse_loss(engine.reconstruct(model), model.reals[-1]).item()


def test_training_lowers_the_reconstruction_loss(image: torch.Tensor) -> None:
    cfg = tiny_config(iters_per_stage=30)
    seen: list[Progress] = []
    model = engine.train(image, cfg, rng=engine.make_rng(0), on_progress=seen.append, progress_every=1)
    first, last = seen[0], seen[-1]
    assert (first.stage, first.iteration) == (0, 1)
    assert (last.stage, last.iteration, last.fraction_done) == (1, 30, 1.0)
    assert set(last.losses) == {"critic", "adversarial", "reconstruction"}
    untrained = engine.train(image, tiny_config(iters_per_stage=1), rng=engine.make_rng(0))
    assert reconstruction_error(model) < 0.8 * reconstruction_error(untrained)


def test_the_trained_model_is_complete_and_has_the_originals_state(trained: TrainedModel) -> None:
    assert trained.is_complete and trained.stages_done == 2
    assert trained.noise_amp[0] == 1.0 and 0 < trained.noise_amp[1] < 1
    assert torch.equal(trained.fixed_noise[0], trained.reals[0])  # generation: z_rec[0] is the image
    assert trained.fixed_noise[1].shape == (
        1,
        64,
        trained.stage_shapes[1][0] + 6,
        trained.stage_shapes[1][1] + 6,
    )
    assert len(trained.generator.body) == 2


def test_same_seed_trains_the_same_weights(image: torch.Tensor) -> None:
    cfg = tiny_config(iters_per_stage=3)
    a = engine.train(image, cfg, rng=engine.make_rng(5))
    b = engine.train(image, cfg, rng=engine.make_rng(5))
    for p, q in zip(a.generator.parameters(), b.generator.parameters(), strict=True):
        assert torch.equal(p, q)


def test_should_stop_cancels_and_stage_snapshots_resume(image: torch.Tensor) -> None:
    cfg = tiny_config(iters_per_stage=4)
    snapshots: list[bytes] = []
    calls = {"n": 0}

    def stop_in_stage_one() -> bool:
        calls["n"] += 1
        return calls["n"] > cfg.iters_per_stage + 2

    with pytest.raises(TrainingCanceled):
        engine.train(
            image,
            cfg,
            rng=engine.make_rng(0),
            should_stop=stop_in_stage_one,
            on_stage_done=lambda m: snapshots.append(engine.checkpoint.to_bytes(m)),
        )
    assert len(snapshots) == 1
    partial = engine.checkpoint.from_bytes(snapshots[0])
    assert partial.stages_done == 1 and not partial.is_complete
    finished_stages: list[int] = []
    model = engine.train(
        image,
        cfg,
        rng=engine.make_rng(1),
        resume=partial,
        on_stage_done=lambda m: finished_stages.append(m.stages_done - 1),
    )
    assert finished_stages == [1] and model.is_complete


def test_resume_rejects_another_config(image: torch.Tensor, trained: TrainedModel) -> None:
    with pytest.raises(ValueError, match="different config"):
        engine.train(image, tiny_config(iters_per_stage=99), resume=trained)


def test_bad_image_tensor_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\[1, 3, H, W\]"):
        engine.train(torch.zeros(3, 40, 40), tiny_config())
    with pytest.raises(ValueError, match="in \\[-1, 1\\]"):
        engine.train(torch.full((1, 3, 40, 40), 5.0), tiny_config())


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic() -> None:
    # D(x) = sum over pixels of x[:, 0]: its gradient has norm 1 at every pixel.
    def critic(x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]

    real, fake = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert gradient_penalty(critic, real, fake, torch.tensor(0.3)).item() == pytest.approx(0.0)


def test_critic_loss_matches_a_direct_computation() -> None:
    cfg = tiny_config()
    critic = Discriminator(cfg)
    real, fake = torch.rand(1, 3, 20, 20) * 2 - 1, torch.rand(1, 3, 20, 20) * 2 - 1
    mix = torch.tensor(0.37)
    loss = critic_loss(critic, real, fake, mix, 0.1)
    blended = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(blended).sum(), blended)
    expected = -critic(real).mean() + critic(fake).mean() + 0.1 * ((grad.norm(dim=1) - 1) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_only_the_newest_bodies_train(image: torch.Tensor) -> None:
    cfg = tiny_config(train_stages=3, train_depth=1, iters_per_stage=2)
    model = engine.train(image, cfg, rng=engine.make_rng(0))
    assert not any(p.requires_grad for p in model.generator.body[0].parameters())
    assert not any(p.requires_grad for p in model.generator.head.parameters())
    assert all(p.requires_grad for p in model.generator.body[2].parameters())


def test_noise_amplitude_is_a_tenth_of_the_reconstruction_rmse(image: torch.Tensor) -> None:
    cfg = tiny_config(iters_per_stage=2)
    model = _start_or_resume(image, cfg, torch.device("cpu"), None, torch.Generator().manual_seed(0))
    rng = engine.make_rng(0)
    setup = begin_stage(model, 0, rng)
    for _ in range(2):
        train_iteration(model, setup, rng)
    # what begin_stage(1) must compute: grow, draw z_rec[1] from the same rng state, reconstruct with amp 0
    expected_model = copy.deepcopy(model)
    expected_model.generator.grow()
    replay = engine.make_rng(0)
    replay.set_state(rng.get_state())
    z1 = torch.randn((1, *noise_shape(1, model.stage_shapes[1], cfg)), generator=replay)
    with torch.no_grad():
        rebuilt = expected_model.generator([model.fixed_noise[0], z1], model.stage_shapes, [1.0, 0.0])
    expected = 0.1 * torch.sqrt(F.mse_loss(rebuilt, model.reals[1])).item()
    begin_stage(model, 1, rng)
    assert model.noise_amp[1] == pytest.approx(expected, rel=1e-5)
    assert torch.equal(model.fixed_noise[1], z1)


def test_learning_rates_scale_down_the_lower_bodies(image: torch.Tensor) -> None:
    cfg = tiny_config(train_stages=5, train_depth=3, max_size=40)
    model = _start_or_resume(image, cfg, torch.device("cpu"), None, torch.Generator().manual_seed(0))
    rng = engine.make_rng(0)
    lr, scale = cfg.lr, cfg.lr_scale
    for stage in range(4):
        setup = begin_stage(model, stage, rng)
        groups = {id(p): g["lr"] for g in setup.generator_optimizer.param_groups for p in g["params"]}
        generator = model.generator
        for depth, body in enumerate(reversed(list(generator.body)[-3:])):
            assert all(groups[id(p)] == pytest.approx(lr * scale**depth) for p in body.parameters())
        head = list(generator.head.parameters())
        if stage < 3:
            assert all(groups[id(p)] == pytest.approx(lr * scale**stage) for p in head)
        else:
            assert not any(id(p) in groups for p in head)
        assert all(groups[id(p)] == lr for p in generator.tail.parameters())
        assert all(g["lr"] == lr for g in setup.discriminator_optimizer.param_groups)
        assert sum(len(g["params"]) for g in setup.discriminator_optimizer.param_groups) == len(
            list(model.discriminator.parameters())
        )


def test_rng_on_another_device_is_a_clear_error(image: torch.Tensor) -> None:
    rng = engine.make_rng(0)
    with pytest.raises(ValueError, match="rng lives on"):
        engine.train(image, tiny_config(), device="meta", rng=rng)
