"""Super-resolution: SinGAN's loop with an SR head (engine.sr), on tiny CPU models.

The quality check (superres-spec.md §4.3, tier 1) trains a tiny model and head on a real photo crop shipped
with the tests (tests/engine/data/angkorwat_96x144.png, cut from angkorwat.jpg), shrunk x4 to 24x36, and
enlarges it back. Its thresholds are loose on purpose: they catch a missing residual, a wrong amplitude,
step or crop, not quality. Measured values and the mutations that turn it red: docs/superres.md.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import engine
from engine import SRConfig, SRHead, TrainedModel
from engine.checkpoint import read_sr_head_description, sr_head_from_bytes, sr_head_to_bytes
from engine.imresize import imresize
from engine.spec.srmath import sr_output_size
from engine.sr import quality
from engine.sr.head import SRNet
from engine.sr.inference import apply_head
from engine.sr.training import adversarial_inputs, degrade
from tests.engine.conftest import tiny_config

PHOTO = Path(__file__).parent / "data" / "angkorwat_96x144.png"
FACTOR = 4
# the tiny CPU setup: a 2-stage model and a tiny head on the 24x36 LR (well under a minute on 2 idle cores)
PHOTO_MODEL = engine.TrainConfig(train_stages=2, iters_per_stage=100, max_size=36, min_size=16, channels=32)
PHOTO_HEAD = SRConfig.preset("tiny")

# thresholds, set from docs/superres.md's measurements with a margin
MAX_PSNR_DEFICIT_DB = 6.0  # psnr_sr >= psnr_bicubic - this
MIN_SHARPNESS_RATIO = 1.5  # sharp_sr >= this * sharp_bicubic
MIN_SHRINK_BACK_DB = 15.0  # PSNR of the result shrunk back by 1/4 against the input (see below)
MIN_ZERO_HEAD_DB = 35.0  # zero head (the imresize chain) against one-shot bicubic; a centred crop gives ~19


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo() -> tuple[torch.Tensor, torch.Tensor]:
    """(HR [1, 3, 96, 144], LR [1, 3, 24, 36]) in [-1, 1]."""
    high = engine.load_image(PHOTO.read_bytes())
    return high, quality.downscale(high, FACTOR)


@pytest.fixture(scope="module")
def photo_model(photo: tuple[torch.Tensor, torch.Tensor]) -> TrainedModel:
    return engine.train(photo[1], PHOTO_MODEL, rng=engine.make_rng(0))


@pytest.fixture(scope="module")
def photo_head(photo_model: TrainedModel) -> SRHead:
    return engine.train_sr_head(photo_model, PHOTO_HEAD, rng=engine.make_rng(1))


def untrained_head(seed: int = 0, **overrides: object) -> SRHead:
    cfg = SRConfig.preset("tiny", **overrides)
    return SRHead(cfg, SRNet(cfg, torch.Generator().manual_seed(seed)).eval(), 0.05, (32, 32), 0)


def zero_head() -> SRHead:
    """psi_SR = identity: the last conv's weights and bias are zero, so the loop is the imresize chain."""
    head = untrained_head()
    with torch.no_grad():
        head.net.last[0].weight.zero_()
        head.net.last[0].bias.zero_()
    return head


# --- the quality check on a real photo ---------------------------------------------------------------------


def test_enlarges_a_real_photo_sharper_than_bicubic(
    photo: tuple[torch.Tensor, torch.Tensor], photo_model: TrainedModel, photo_head: SRHead
) -> None:
    high, low = photo
    assert torch.equal(photo_model.reals[-1], low)  # the model's top image is the LR photo itself
    ours = engine.super_resolve(photo_model, photo_head, FACTOR, rng=engine.make_rng(7))
    assert ours.shape == (1, 3, 96, 144)
    assert torch.isfinite(ours).all() and ours.min() >= -1 and ours.max() <= 1
    bicubic = quality.bicubic(low, FACTOR)
    psnr_ours, psnr_bicubic = quality.psnr(ours, high, FACTOR), quality.psnr(bicubic, high, FACTOR)
    sharp_ours, sharp_bicubic = quality.sharpness(ours), quality.sharpness(bicubic)
    shrink_back = quality.shrink_back_psnr(ours, low, FACTOR)
    measured = f"PSNR {psnr_ours:.2f} (bicubic {psnr_bicubic:.2f}), sharpness {sharp_ours:.4f} "
    measured += f"(bicubic {sharp_bicubic:.4f}), shrink-back {shrink_back:.2f} dB"
    print(measured)  # shown with -s: the numbers docs/superres.md records
    assert psnr_ours >= psnr_bicubic - MAX_PSNR_DEFICIT_DB, measured
    assert sharp_ours >= MIN_SHARPNESS_RATIO * sharp_bicubic, measured
    # 19.9 dB where this was set; 16.3 dB on the machine of 2026-12-03 with the code unchanged (the tiny GAN's
    # training does not reproduce across these CPUs): 15 keeps a margin; bicubic itself gives ~35
    assert shrink_back >= MIN_SHRINK_BACK_DB, measured


def test_the_trained_head_is_seeded_and_noise_scale_zero_is_deterministic(
    photo_model: TrainedModel, photo_head: SRHead
) -> None:
    def run(seed: int, noise_scale: float = 1.0) -> torch.Tensor:
        return engine.super_resolve(
            photo_model, photo_head, FACTOR, rng=engine.make_rng(seed), noise_scale=noise_scale
        )

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    assert torch.equal(run(3, noise_scale=0.0), run(4, noise_scale=0.0))
    assert photo_head.noise_amp > 0


# --- geometry and randomness of the loop (no training) -------------------------------------------------


def test_a_zero_head_is_one_bicubic_enlargement_cropped_top_left(
    trained: TrainedModel, photo: tuple[torch.Tensor, torch.Tensor]
) -> None:
    low = photo[1]  # [1, 3, 24, 36]
    height, width = 4 * low.shape[2], 4 * low.shape[3]
    out = engine.super_resolve(trained, zero_head(), FACTOR, rng=engine.make_rng(0), source=low)
    assert out.shape == (1, 3, height, width)
    one_shot = imresize(low, FACTOR)[:, :, :height, :width]
    assert quality.psnr(out, one_shot) >= MIN_ZERO_HEAD_DB
    # the same chain with a centred crop is misaligned by a few pixels: far below
    chain = low
    for _ in range(6):
        chain = imresize(chain, 4 ** (1 / 6))
    top, left = (chain.shape[2] - height) // 2, (chain.shape[3] - width) // 2
    centred = chain[:, :, top : top + height, left : left + width]
    assert quality.psnr(centred, one_shot) < MIN_ZERO_HEAD_DB - 5


def test_the_loop_is_singans_written_out(trained: TrainedModel) -> None:
    """K = 6 passes of imresize by 4^(1/6) and the head with noise_scale * a, then the top-left crop."""
    head = untrained_head(seed=1)
    low = trained.reals[-1]  # [1, 3, 27, 32]
    out = engine.super_resolve(trained, head, 4.0, rng=engine.make_rng(9), noise_scale=0.5)
    seed = int(torch.randint(0, 2**62, (1,), generator=engine.make_rng(9))[0])  # variant 0's own rng
    variant_rng = engine.make_rng(seed)
    image = low
    for _ in range(6):
        upsampled = imresize(image, 4 ** (1 / 6))
        noise = torch.randn(upsampled.shape, generator=variant_rng)
        padded = F.pad(upsampled, (5, 5, 5, 5)) + 0.5 * head.noise_amp * F.pad(noise, (5, 5, 5, 5))
        with torch.no_grad():
            image = upsampled + head.net.residual(padded)
    expected = image[:, :, : 4 * low.shape[2], : 4 * low.shape[3]].clamp(-1, 1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("factor", [1.1, 1.5, 2.0, 3.0, 4.0, 8.0])
def test_output_size_is_what_srmath_says(trained: TrainedModel, factor: float) -> None:
    source = trained.reals[-1][:, :, :, :25]  # 27x25: odd sizes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # x1.1 and x1.5 warn about the step
        out = engine.super_resolve(trained, zero_head(), factor, source=source)
    assert tuple(out.shape[-2:]) == sr_output_size(27, 25, factor)


def test_variants_depend_only_on_their_seed_not_on_n_or_bands(trained: TrainedModel) -> None:
    head = untrained_head()
    three = engine.super_resolve(trained, head, 2.0, 3, rng=engine.make_rng(5))
    one = engine.super_resolve(trained, head, 2.0, 1, rng=engine.make_rng(5))
    torch.testing.assert_close(three[:1], one, rtol=0, atol=1e-5)  # convs round differently per batch size
    assert not torch.equal(three[0], three[1])
    banded = engine.super_resolve(trained, head, 2.0, 3, rng=engine.make_rng(5), memory_budget=200_000)
    torch.testing.assert_close(banded, three, rtol=0, atol=1e-5)


def test_bands_compute_the_same_head(trained: TrainedModel) -> None:
    head = untrained_head(seed=3)
    image = torch.rand(2, 3, 41, 30) * 2 - 1
    noise = torch.randn(2, 3, 41, 30)
    with torch.inference_mode():
        whole = head.net(image, noise, 0.3)
        banded = apply_head(head.net, image, noise, 0.3, memory_budget=30_000)  # bands of a few rows
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-6)


def test_a_sample_can_be_the_source(trained: TrainedModel) -> None:
    sample = engine.sample(trained, 1, rng=engine.make_rng(0))
    out = engine.super_resolve(trained, zero_head(), 2.0, source=sample)
    height, width = 2 * sample.shape[2], 2 * sample.shape[3]
    torch.testing.assert_close(out, imresize(sample, 2.0)[:, :, :height, :width], rtol=0, atol=0.05)


def test_requests_out_of_range_are_clear_errors(trained: TrainedModel) -> None:
    head = zero_head()
    for factor in (1.0, 8.5, math.nan):
        with pytest.raises(ValueError, match="factor must be"):
            engine.super_resolve(trained, head, factor)
    with pytest.raises(ValueError, match="over the limit"):
        engine.super_resolve(trained, head, 4.0, max_output_pixels=10_000)
    with pytest.raises(ValueError, match="n must be"):
        engine.super_resolve(trained, head, 2.0, 0)
    with pytest.raises(ValueError, match="noise_scale"):
        engine.super_resolve(trained, head, 2.0, noise_scale=-1.0)
    with pytest.raises(ValueError, match="source must be"):
        engine.super_resolve(trained, head, 2.0, source=torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="head is on meta"):
        engine.super_resolve(trained, untrained_head().to("meta"), 2.0)


def test_a_step_far_from_the_trained_one_warns(trained: TrainedModel) -> None:
    with pytest.warns(UserWarning, match="trained for"):
        engine.super_resolve(trained, zero_head(), 1.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.super_resolve(trained, zero_head(), 2.0)  # same step as x4


# --- training ----------------------------------------------------------------------------------------------


def test_training_reports_progress_is_seeded_and_stops(trained: TrainedModel) -> None:
    cfg = SRConfig.preset("tiny", iterations=4)
    seen: list[engine.Progress] = []
    a = engine.train_sr_head(trained, cfg, rng=engine.make_rng(2), on_progress=seen.append, progress_every=1)
    assert [p.iteration for p in seen] == [1, 2, 3, 4] and seen[-1].fraction_done == 1.0
    assert set(seen[-1].losses) == {"critic", "adversarial", "reconstruction"}
    b = engine.train_sr_head(trained, cfg, rng=engine.make_rng(2))
    for p, q in zip(a.net.parameters(), b.net.parameters(), strict=True):
        assert torch.equal(p, q)
    assert a.noise_amp == b.noise_amp > 0 and a.trained_on == trained.stage_shapes[-1]
    assert (a.passes, round(a.r0, 6)) == (6, 0.793701)
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(engine.TrainingCanceled):
        engine.train_sr_head(trained, cfg, rng=engine.make_rng(2), should_stop=stop_after_two)


def test_noise_amplitude_is_a_tenth_of_the_one_step_rmse(trained: TrainedModel) -> None:
    head = engine.train_sr_head(trained, SRConfig.preset("tiny", iterations=1), rng=engine.make_rng(0))
    real = trained.reals[-1]
    r0 = 4 ** (-1 / 6)
    degraded = imresize(imresize(real, r0), 1 / r0)[:, :, : real.shape[2], : real.shape[3]]
    assert head.noise_amp == pytest.approx(0.1 * torch.sqrt(((degraded - real) ** 2).mean()).item(), rel=1e-5)


def test_adversarial_inputs_are_degraded_samples_or_the_degraded_image(trained: TrainedModel) -> None:
    r0 = 4 ** (-1 / 6)
    samples = adversarial_inputs(trained, 3, r0, "samples", engine.make_rng(0))
    assert samples.shape == (3, 3, *trained.stage_shapes[-1])
    assert not torch.equal(samples[0], samples[1])
    real = adversarial_inputs(trained, 3, r0, "real", engine.make_rng(0))
    assert torch.equal(real[2:], degrade(trained.reals[-1], r0))


def test_only_scene_models_get_a_head(image: torch.Tensor, trained: TrainedModel) -> None:
    harmonization = engine.train(image, tiny_config(mode="harmonization", iters_per_stage=1))
    with pytest.raises(ValueError, match="SR heads are trained on"):
        engine.train_sr_head(harmonization, SRConfig.preset("tiny", iterations=1))
    partial = copy.copy(trained)
    partial.fixed_noise = trained.fixed_noise[:1]
    with pytest.raises(ValueError, match="not fully trained"):
        engine.train_sr_head(partial, SRConfig.preset("tiny", iterations=1))


# --- checkpoints -------------------------------------------------------------------------------------------


def test_head_round_trips_through_bytes(trained: TrainedModel) -> None:
    head = engine.train_sr_head(trained, SRConfig.preset("tiny", iterations=2), rng=engine.make_rng(0))
    blob = sr_head_to_bytes(head)
    description = read_sr_head_description(blob)
    assert description["sr_train"] == 4.0 and description["K"] == 6
    assert description["r0"] == pytest.approx(4 ** (-1 / 6)) and description["noise_amp"] == head.noise_amp
    restored = sr_head_from_bytes(blob)
    assert restored.config == head.config and restored.trained_on == head.trained_on
    assert torch.equal(
        engine.super_resolve(trained, head, 2.0, 2, rng=engine.make_rng(1)),
        engine.super_resolve(trained, restored, 2.0, 2, rng=engine.make_rng(1)),
    )


def test_batch_norm_heads_round_trip(trained: TrainedModel) -> None:
    cfg = SRConfig.preset("tiny", iterations=2, batch_norm=True)
    head = engine.train_sr_head(trained, cfg, rng=engine.make_rng(0))
    restored = sr_head_from_bytes(sr_head_to_bytes(head))
    assert torch.equal(
        engine.super_resolve(trained, head, 2.0, rng=engine.make_rng(1)),
        engine.super_resolve(trained, restored, 2.0, rng=engine.make_rng(1)),
    )


def test_tampered_or_foreign_blobs_are_refused(trained: TrainedModel) -> None:
    from safetensors.torch import load, save

    blob = sr_head_to_bytes(untrained_head())
    with pytest.raises(ValueError, match="not an SR head"):
        sr_head_from_bytes(engine.checkpoint.to_bytes(trained))  # a model checkpoint is not a head
    with pytest.raises(ValueError, match="not a ConSinGAN checkpoint"):
        engine.checkpoint.from_bytes(blob)
    tensors = load(blob)
    with pytest.raises(ValueError, match="not an SR head"):
        sr_head_from_bytes(save(tensors, metadata={"consingan_sr_head": "not json"}))
    description = read_sr_head_description(blob)
    del tensors["head.last.0.bias"]
    with pytest.raises(ValueError, match="do not match"):
        sr_head_from_bytes(save(tensors, metadata={"consingan_sr_head": json.dumps(description)}))
    wrong_k = dict(description, K=5)
    with pytest.raises(ValueError, match="K and r0"):
        sr_head_from_bytes(save(load(blob), metadata={"consingan_sr_head": json.dumps(wrong_k)}))
