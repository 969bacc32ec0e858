"""The fast path runs the reference iteration: on the CPU (eager, fused Adam) it must agree with it."""

from __future__ import annotations

import pytest
import torch

import engine
from engine.fast import AsyncLosses, FastOptions, FastStage, optimizer_options
from engine.steps import begin_stage, draw_iteration_inputs, iteration_step
from engine.training import ReferenceStage, _start_or_resume
from tests.engine.conftest import synthetic_image, tiny_config


def fresh_stage(seed: int, adam: dict, mode: str = "generation"):  # type: ignore[no-untyped-def]
    cfg = tiny_config(mode=mode, iters_per_stage=6)
    model = _start_or_resume(
        synthetic_image(), cfg, torch.device("cpu"), None, torch.Generator().manual_seed(1)
    )
    rng = engine.make_rng(seed)
    return model, begin_stage(model, 0, rng, adam), rng


@pytest.mark.parametrize("mode", ["generation", "harmonization"])
def test_fast_runner_matches_the_reference_losses_and_weights(mode: str) -> None:
    fast_options = FastOptions()
    ref_model, ref_setup, ref_rng = fresh_stage(0, {}, mode)
    fast_model, fast_setup, fast_rng = fresh_stage(
        0, optimizer_options(torch.device("cpu"), fast_options), mode
    )
    reference = ReferenceStage(ref_model, ref_setup, ref_rng)
    fast = FastStage(fast_model, fast_setup, fast_rng, fast_options)
    for _ in range(4):
        reference.step()
        fast.step()
        expected, got = reference.report(), fast.report(final=True)
        for name in expected:
            assert got[name] == pytest.approx(expected[name], rel=1e-3, abs=1e-4), name
    for p, q in zip(ref_model.generator.parameters(), fast_model.generator.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)


def test_iteration_step_is_deterministic_given_its_inputs() -> None:
    results = []
    for _ in range(2):
        model, setup, rng = fresh_stage(3, {})
        inputs = draw_iteration_inputs(model, setup, rng)
        results.append({k: float(v) for k, v in iteration_step(model, setup, inputs).items()})
    assert results[0] == results[1]


def test_fast_path_trains_end_to_end_on_cpu() -> None:
    cfg = tiny_config(iters_per_stage=4)
    seen: list[engine.Progress] = []
    model = engine.train(synthetic_image(), cfg, rng=engine.make_rng(0), path="fast", on_progress=seen.append)
    assert model.is_complete and seen[-1].fraction_done == 1.0
    assert set(seen[-1].losses) == {"critic", "adversarial", "reconstruction"}


def test_learning_rate_decays_at_eighty_percent_on_the_fast_path() -> None:
    model, setup, rng = fresh_stage(0, {})
    runner = FastStage(model, setup, rng, FastOptions())
    lrs = []
    for _ in range(6):
        runner.step()
        lrs.append(setup.generator_optimizer.param_groups[-1]["lr"])
    assert lrs[3] == pytest.approx(5e-4) and lrs[5] == pytest.approx(5e-5)  # milestone round(0.8 * 6) = 5


def test_async_losses_on_cpu_read_immediately() -> None:
    reader = AsyncLosses(torch.device("cpu"))
    reader.push(
        {"critic": torch.tensor(1.0), "adversarial": torch.tensor(2.0), "reconstruction": torch.tensor(3.0)}
    )
    assert reader.read() == {"critic": 1.0, "adversarial": 2.0, "reconstruction": 3.0}


def test_captured_sampler_equals_sample_on_cpu(trained: engine.TrainedModel) -> None:
    from engine.fast import CapturedSampler

    sampler = CapturedSampler(trained, 3, scale=(1.0, 1.5))
    expected = engine.sample(trained, 3, rng=engine.make_rng(4), scale=(1.0, 1.5))
    assert torch.allclose(sampler(engine.make_rng(4)), expected, atol=1e-6)
    assert not torch.equal(sampler(engine.make_rng(5)), expected)
