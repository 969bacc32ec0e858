"""The CPU stand-in of a CUDA graph (engine/graphs.py): it must bake in what a graph bakes in."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine.graphs import TraceRecorder, make_recorder


class Problem:
    """A conv layer trained by fused Adam on one input buffer: [1, 3, 8, 8] -> [1, 4, 6, 6]."""

    def __init__(self, seed: int = 0) -> None:
        rng = torch.Generator().manual_seed(seed)
        self.net = nn.Conv2d(3, 4, 3)
        with torch.no_grad():
            for parameter in self.net.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=rng) * 0.3)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=0.05, fused=True)
        self.inputs = {"x": torch.randn(1, 3, 8, 8, generator=rng)}

    def step(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.net(self.inputs["x"]).square().mean()
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def weights(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.net.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def recorded(problem: Problem) -> tuple[TraceRecorder, torch.Tensor]:
    recorder = TraceRecorder()
    recorder.warm_up(problem.step)  # Adam's state exists before capture, as the fast path ensures
    return recorder, recorder.capture(problem.step)


def test_capture_runs_nothing_and_each_replay_runs_the_step_once() -> None:
    graphed, eager = Problem(), Problem()
    eager.step()
    before = graphed.weights()
    recorder, loss = recorded(graphed)
    assert not same(before, graphed.weights())  # the warm-up trained
    after_warm_up = graphed.weights()
    assert same(after_warm_up, graphed.weights()) and math.isnan(float(loss))  # capture ran nothing
    for _ in range(3):
        expected = eager.step()
        recorder.replay()
        assert torch.equal(loss, expected)  # the static output, refreshed in place
        assert same(graphed.weights(), eager.weights())


def test_a_replay_reads_the_buffers_held_at_capture_not_the_names() -> None:
    graphed, eager = Problem(), Problem()
    eager.step()
    recorder, loss = recorded(graphed)
    graphed.inputs["x"] = torch.ones(1, 3, 8, 8)  # rebinding the name: a graph still reads the old buffer
    recorder.replay()
    assert torch.equal(loss, eager.step())  # computed on the original input


def test_copying_into_the_held_buffer_is_what_a_replay_sees() -> None:
    graphed, eager = Problem(), Problem()
    eager.step()
    buffer = graphed.inputs["x"]
    recorder, loss = recorded(graphed)
    fresh = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    buffer.copy_(fresh)
    eager.inputs["x"] = fresh.clone()
    recorder.replay()
    assert torch.equal(loss, eager.step())


def test_python_numbers_such_as_the_learning_rate_are_baked_in_until_recaptured() -> None:
    problem = Problem()
    recorder, _ = recorded(problem)
    for group in problem.optimizer.param_groups:
        group["lr"] = 0.0
    before = problem.weights()
    recorder.replay()
    assert not same(before, problem.weights())  # still the learning rate of the capture
    recorder.capture(problem.step)
    before = problem.weights()
    recorder.replay()
    assert same(before, problem.weights())  # re-captured at lr 0


def test_which_tensors_need_gradients_is_baked_in_too() -> None:
    problem = Problem()
    recorder, _ = recorded(problem)
    problem.net.requires_grad_(False)  # after capture: the recorded backward still runs
    before = problem.weights()
    recorder.replay()
    assert not same(before, problem.weights())


@pytest.mark.parametrize("mistake", ["host read", "random draw"])
def test_capture_refuses_what_a_cuda_graph_cannot_record_and_leaves_the_state(mistake: str) -> None:
    problem = Problem()
    recorder = TraceRecorder()
    recorder.warm_up(problem.step)
    before = problem.weights()

    def step() -> torch.Tensor:
        loss = problem.step()
        if mistake == "host read":
            return torch.tensor(float(loss))
        return loss + torch.randn(())

    with pytest.raises(RuntimeError, match=r"host|random"):
        recorder.capture(step)
    assert same(before, problem.weights())  # the optimizer step inside the failed capture left no trace


def test_replay_before_capture_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before capture"):
        TraceRecorder().replay()


def test_auto_records_nothing_on_the_cpu() -> None:
    assert make_recorder(torch.device("cpu")) is None
    assert isinstance(make_recorder(torch.device("cpu"), "trace"), TraceRecorder)
