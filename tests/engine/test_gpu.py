"""CUDA-only checks of the fast path; skipped where no CUDA device exists (CI never has one)."""

from __future__ import annotations

import pytest
import torch

import engine
from engine.fast import FastOptions, FastStage, optimizer_options
from engine.graphs import CudaGraphRecorder
from engine.steps import begin_stage
from engine.training import _start_or_resume
from tests.engine.conftest import synthetic_image, tiny_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
CUDA = torch.device("cuda")


def stage_on_cuda(options: FastOptions):  # type: ignore[no-untyped-def]
    cfg = tiny_config(iters_per_stage=20)  # warm-up 3, capture at 4, decay after 16, re-capture at 17
    model = _start_or_resume(synthetic_image(), cfg, CUDA, None, torch.Generator().manual_seed(1))
    rng = engine.make_rng(0, CUDA)
    setup = begin_stage(model, 0, rng, optimizer_options(CUDA, options))
    return model, FastStage(model, setup, rng, options)


@pytest.mark.filterwarnings("error:graph capture failed")  # an eager fallback would pass wrongly
def test_graph_replay_matches_eager_on_cuda_through_the_decay() -> None:
    exact = FastOptions(tf32=False)
    graphed_model, graphed = stage_on_cuda(exact)
    eager_model, eager = stage_on_cuda(FastOptions(tf32=False, cuda_graphs=False))
    torch.backends.cudnn.allow_tf32 = False
    for _ in range(20):
        graphed.step()
        eager.step()
    assert isinstance(graphed.recorder, CudaGraphRecorder) and graphed.captures == 2
    a, b = graphed.report(final=True), eager.report(final=True)
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=1e-2, abs=1e-3)
    for net in ("generator", "discriminator"):
        graphed_net, eager_net = getattr(graphed_model, net), getattr(eager_model, net)
        for p, q in zip(graphed_net.parameters(), eager_net.parameters(), strict=True):
            assert torch.allclose(p, q, atol=1e-4), net


def test_fast_and_reference_paths_train_on_cuda_and_checkpoints_move_to_cpu() -> None:
    cfg = tiny_config(iters_per_stage=12)
    for path in ("reference", "fast"):
        model = engine.train(synthetic_image(), cfg, device="cuda", rng=engine.make_rng(0, "cuda"), path=path)
        samples = engine.sample(model, 4, rng=engine.make_rng(0, "cuda"))
        assert samples.is_cuda and samples.shape[0] == 4
        on_cpu = engine.checkpoint.from_bytes(engine.checkpoint.to_bytes(model), "cpu")
        assert engine.sample(on_cpu, 2, rng=engine.make_rng(0)).shape[0] == 2


def test_captured_sampler_matches_eager_on_cuda() -> None:
    from engine.fast import CapturedSampler

    model = engine.train(
        synthetic_image(), tiny_config(iters_per_stage=4), device="cuda", rng=engine.make_rng(0, "cuda")
    )
    graphed = CapturedSampler(model, 16)
    assert isinstance(graphed.recorder, CudaGraphRecorder)
    out = graphed(engine.make_rng(3, "cuda")).clone()
    expected = engine.sample(model, 16, rng=engine.make_rng(3, "cuda"))
    assert torch.allclose(out, expected, atol=1e-3)
    fast = CapturedSampler(model, 16, bf16=True, channels_last=True)
    assert (fast(engine.make_rng(3, "cuda")) - expected).abs().mean() < 0.05
