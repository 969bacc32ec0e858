"""The fast path runs the reference iteration, and must agree with it.

On a CPU the CUDA graph is replaced by its stand-in (`FastOptions(recorder="trace")`, engine/graphs.py),
which bakes in what a graph bakes in. So the graph logic itself runs here: warm-up, capture, fresh inputs
copied into the static buffers, replay, re-capture at the learning-rate decay (iteration 8 of 10). With the
same fused Adam on both sides the recorded path must equal the reference bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import torch

import engine
from engine.fast import AsyncLosses, FastOptions, FastStage, optimizer_options
from engine.graphs import TraceRecorder
from engine.model import TrainedModel
from engine.steps import begin_stage, draw_iteration_inputs, iteration_step
from engine.training import ReferenceStage, _start_or_resume
from tests.engine.conftest import synthetic_image, tiny_config

CPU = torch.device("cpu")
TRACED = FastOptions(recorder="trace")  # warm-up 3, capture at iteration 4
ITERATIONS = 10  # the decay comes after iteration round(0.8 * 10) = 8: re-capture at iteration 9
MODE_OVERRIDES: dict[str, dict[str, Any]] = {
    "generation": {},
    # batch norm: running statistics are state that the record writes, and capture must leave alone
    "harmonization": {"batch_norm": True, "leaky_slope": 0.3},
}


def fresh_stage(  # type: ignore[no-untyped-def]
    seed: int, adam: dict, mode: str = "generation", iterations: int = 6, **overrides: Any
):
    cfg = tiny_config(mode=mode, iters_per_stage=iterations, **overrides)
    model = _start_or_resume(synthetic_image(), cfg, CPU, None, torch.Generator().manual_seed(1))
    rng = engine.make_rng(seed)
    return model, begin_stage(model, 0, rng, adam), rng


def tensors(model: TrainedModel) -> list[torch.Tensor]:
    """Everything training changes: both networks' parameters and buffers."""
    networks = (model.generator, model.discriminator)
    return [t.detach().clone() for net in networks for t in [*net.parameters(), *net.buffers()]]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        assert torch.equal(x, y), f"tensor {index} differs by {(x - y).abs().max():.3g}"


def recorded_and_reference(mode: str, options: FastOptions = TRACED):  # type: ignore[no-untyped-def]
    """A recorded fast stage and a reference stage with the same Adam: they must stay bit-identical."""
    adam = optimizer_options(CPU, options)
    fast_model, fast_setup, fast_rng = fresh_stage(0, adam, mode, ITERATIONS, **MODE_OVERRIDES[mode])
    ref_model, ref_setup, ref_rng = fresh_stage(0, adam, mode, ITERATIONS, **MODE_OVERRIDES[mode])
    fast = FastStage(fast_model, fast_setup, fast_rng, options)
    return fast, ReferenceStage(ref_model, ref_setup, ref_rng)


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


@pytest.mark.filterwarnings("error:graph capture failed")  # eager fallback would hide the graph logic
@pytest.mark.parametrize("mode", ["generation", "harmonization"])
def test_recorded_fast_path_equals_the_reference_through_the_decay(mode: str) -> None:
    fast, reference = recorded_and_reference(mode)
    for iteration in range(1, ITERATIONS + 1):
        fast.step()
        reference.step()
        assert fast.report(final=True) == reference.report(), f"losses of iteration {iteration}"
    assert fast.captures == 2, "captured once, and once more after the learning-rate decay"
    assert_same(tensors(fast.model), tensors(reference.model))
    optimizers = (fast.setup.generator_optimizer, fast.setup.discriminator_optimizer)
    for group in (group for optimizer in optimizers for group in optimizer.param_groups):
        assert group["lr"] == pytest.approx(0.1 * group["initial_lr"])  # every rate decayed


def test_the_critic_trains_in_every_iteration_of_the_recorded_path() -> None:
    fast, _ = recorded_and_reference("generation")
    critic = fast.model.discriminator
    for iteration in range(1, ITERATIONS + 1):
        before = [p.detach().clone() for p in critic.parameters()]
        fast.step()
        assert all(p.requires_grad for p in critic.parameters()), f"critic frozen after {iteration}"
        # conv weights only: the tail's bias cancels out of the critic loss, its gradient is exactly zero
        changed = [
            not torch.equal(p, q) for p, q in zip(before, critic.parameters(), strict=True) if p.dim() > 1
        ]
        assert all(changed), f"critic did not train in iteration {iteration}"


class CaptureFailsInTheGeneratorStep(TraceRecorder):
    """Fails the way a CUDA capture can: in the middle of the generator step, with the critic frozen."""

    def __init__(self, generator_optimizer: torch.optim.Optimizer) -> None:
        super().__init__()
        self.generator_optimizer = generator_optimizer

    def capture(self, step: Callable[[], Any]) -> Any:
        refusal = RuntimeError("operation not permitted when stream is capturing")
        with mock.patch.object(self.generator_optimizer, "step", side_effect=refusal):
            return super().capture(step)


def test_a_failed_capture_trains_on_eagerly_with_the_critic_unfrozen() -> None:
    fast, reference = recorded_and_reference("generation")
    fast.recorder = CaptureFailsInTheGeneratorStep(fast.setup.generator_optimizer)
    with pytest.warns(UserWarning, match="capture failed"):
        for iteration in range(1, ITERATIONS + 1):
            fast.step()
            reference.step()
            assert fast.report(final=True) == reference.report(), f"losses of iteration {iteration}"
    assert fast.recorder is None and fast.captures == 0
    assert all(p.requires_grad for p in fast.model.discriminator.parameters())
    assert_same(tensors(fast.model), tensors(reference.model))


@pytest.mark.filterwarnings("error:graph capture failed")
def test_recorded_training_equals_eager_training_over_stages() -> None:
    cfg = tiny_config(iters_per_stage=6)  # capture at iteration 4, decay after 5, re-capture at 6
    models = [
        engine.train(synthetic_image(), cfg, rng=engine.make_rng(0), path="fast", fast_options=options)
        for options in (TRACED, FastOptions(cuda_graphs=False))
    ]
    assert_same(tensors(models[0]), tensors(models[1]))
    assert models[0].noise_amp == models[1].noise_amp


def test_warm_up_must_give_adam_its_state_before_capture() -> None:
    with pytest.raises(ValueError, match="warmup_iterations"):
        FastOptions(warmup_iterations=0)


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


@pytest.mark.parametrize("recorder", ["auto", "trace"])
def test_captured_sampler_equals_sample_on_cpu(trained: engine.TrainedModel, recorder: str) -> None:
    from engine.fast import CapturedSampler

    sampler = CapturedSampler(trained, 3, scale=(1.0, 1.5), recorder=recorder)  # type: ignore[arg-type]
    expected = engine.sample(trained, 3, rng=engine.make_rng(4), scale=(1.0, 1.5))
    assert torch.allclose(sampler(engine.make_rng(4)), expected, atol=1e-6)
    assert not torch.equal(sampler(engine.make_rng(5)), expected)
