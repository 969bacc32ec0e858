from __future__ import annotations

import math

import pytest
import torch

import engine
from engine import TrainedModel
from engine.augment import cut_out, harmonization_augment, hsv_to_rgb, rgb_to_hsv, shuffle_patches
from engine.harmonization import BLUR_SIGMA, COMPOSITES, Composite, binary_mask, soft_mask
from engine.harmonization_metrics import colour_distance, colour_statistics, detail_kept, surrounding_ring
from tests.engine.conftest import checkerboard, synthetic_image, tiny_config

# Measured on textured_paste() with tiny harmonization models of 4 and 20 iterations, seeds 0-2: detail
# kept 0.999-1.000 for "detail", 0.34 for "render" (0.03 with the editing model below), which the threshold
# must reject; Lab distance to the scene around 64.6 before, 33-46 after "detail" (19-44 after "render").
DETAIL_KEPT_AT_LEAST = 0.9
COLOUR_DISTANCE_AT_MOST = 0.8  # of the distance before


@pytest.fixture(scope="module")
def harmonizer() -> TrainedModel:
    cfg = tiny_config(mode="harmonization", batch_norm=True, leaky_slope=0.3, iters_per_stage=4)
    return engine.train(synthetic_image(40, 48), cfg, rng=engine.make_rng(0))


def pasted(width: int = 96, height: int = 80) -> tuple[torch.Tensor, torch.Tensor]:
    """A naive image (the scene at another size with a flat square pasted in) and its mask."""
    scene = torch.nn.functional.interpolate(synthetic_image(40, 48), size=(height, width), mode="bilinear")
    mask = torch.zeros(1, 1, height, width)
    mask[..., 8:24, 10:30] = 1.0
    naive = scene.clone()
    naive[..., 8:24, 10:30] = torch.tensor([0.9, -0.9, 0.2])[:, None, None]
    return naive, mask


def textured_paste(height: int = 120, width: int = 144) -> tuple[torch.Tensor, torch.Tensor]:
    """The scene at ~4x the tiny model's size with a 2-px checkerboard of two colours it lacks pasted in:
    fine detail and sharp edges that a 32-px model cannot render. [1, 3, H, W] and its mask [1, 1, H, W]."""
    scene = torch.nn.functional.interpolate(synthetic_image(40, 48), size=(height, width), mode="bilinear")
    top, left, rows, cols = 30, 40, 48, 56
    light = torch.tensor([0.9, 0.9, -0.6])[:, None, None]  # yellow
    dark = torch.tensor([-0.8, -0.6, 0.2])[:, None, None]  # dark blue
    squares = checkerboard(rows, cols)
    naive = scene.clone()
    naive[0, :, top : top + rows, left : left + cols] = squares * light + (1 - squares) * dark
    mask = torch.zeros(1, 1, height, width)
    mask[..., top : top + rows, left : left + cols] = 1.0
    return naive, mask


def test_soft_mask_is_exactly_zero_beyond_radius_plus_four_sigma() -> None:
    binary = torch.zeros(1, 1, 120, 120)
    binary[..., 50:60, 50:60] = 1
    soft = soft_mask(binary, radius=7)
    reach = 7 + math.ceil(4 * BLUR_SIGMA)
    assert soft.max() == 1 and soft[..., 55, 55] > 0.99
    far = torch.ones_like(soft, dtype=torch.bool)
    far[..., 50 - reach : 60 + reach, 50 - reach : 60 + reach] = False
    assert soft[far].abs().max() == 0


@pytest.mark.parametrize("composite", COMPOSITES)
def test_output_keeps_the_naive_pixels_far_from_the_mask(
    harmonizer: TrainedModel, composite: Composite
) -> None:
    naive, mask = pasted()
    out = engine.harmonize(harmonizer, naive, mask, dilation_radius=2, blur_sigma=1.0, composite=composite)
    assert out.shape == naive.shape
    # mask at rows 8..24, cols 10..30 of 96x80; the model is 32 px wide (3x smaller): radius 2 + 4 sigma
    # is 6 model px, i.e. 18 naive px, plus 3 px for the bilinear resize of the blend
    far = torch.ones(80, 96, dtype=torch.bool)
    far[: 24 + 21, : 30 + 21] = False
    assert (out[0][:, far] - naive[0][:, far]).abs().max() <= 1 / 255
    inside = out[0, :, 12:20, 15:25]
    assert not torch.allclose(inside, naive[0, :, 12:20, 15:25], atol=0.05)


def test_detail_composite_keeps_the_pasted_detail_and_takes_the_scene_colours(
    harmonizer: TrainedModel,
) -> None:
    naive, mask = textured_paste()
    inside = mask.bool()
    out = engine.harmonize(harmonizer, naive, mask, composite="detail")
    assert out.shape == naive.shape
    assert detail_kept(out, naive, inside) > DETAIL_KEPT_AT_LEAST
    scene = colour_statistics(naive, surrounding_ring(inside, 12))
    before = colour_distance(colour_statistics(naive, inside), scene)
    after = colour_distance(colour_statistics(out, inside), scene)
    assert after < COLOUR_DISTANCE_AT_MOST * before


def test_the_render_composite_loses_the_detail_the_detail_composite_keeps(harmonizer: TrainedModel) -> None:
    # what the detail threshold is for: today's upscaled rendering does not pass it
    naive, mask = textured_paste()
    out = engine.harmonize(harmonizer, naive, mask, composite="render")
    assert detail_kept(out, naive, mask.bool()) < DETAIL_KEPT_AT_LEAST / 2


def test_at_the_model_size_both_composites_agree(harmonizer: TrainedModel) -> None:
    height, width = harmonizer.stage_shapes[-1]
    naive, mask = pasted(width, height)
    detail, render = (engine.harmonize(harmonizer, naive, mask, composite=c) for c in ("detail", "render"))
    assert torch.allclose(detail, render, atol=1e-5)


def test_unknown_composite_is_a_clear_error(harmonizer: TrainedModel) -> None:
    naive, mask = pasted(48, 40)
    with pytest.raises(ValueError, match="composite must be one of detail, render"):
        engine.harmonize(harmonizer, naive, mask, composite="sharp")  # type: ignore[arg-type]


def test_every_injection_stage_renders(harmonizer: TrainedModel) -> None:
    naive, mask = pasted(48, 40)
    for stage in range(harmonizer.stages_done):
        assert engine.harmonize(harmonizer, naive, mask, stage=stage).shape == naive.shape
    with pytest.raises(ValueError, match="stage"):
        engine.harmonize(harmonizer, naive, mask, stage=5)


def test_bad_masks_are_clear_errors(harmonizer: TrainedModel) -> None:
    naive, mask = pasted(48, 40)
    with pytest.raises(ValueError, match="same size"):
        engine.harmonize(harmonizer, naive, mask[..., :30, :])
    with pytest.raises(ValueError, match="empty"):
        engine.harmonize(harmonizer, naive, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="empty"):
        engine.harmonize(harmonizer, naive, torch.full_like(mask, -1.0))  # all black in [-1, 1]


def test_masks_are_thresholded_in_either_value_range() -> None:
    grey = torch.tensor([[-1.0, -0.2], [0.2, 1.0]]).view(1, 1, 2, 2)
    assert binary_mask(grey, (2, 2)).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    unit = torch.tensor([[0.0, 0.4], [0.6, 1.0]]).view(1, 1, 2, 2)
    assert binary_mask(unit, (2, 2)).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]


def test_fine_tuning_changes_weights_and_keeps_the_architecture(harmonizer: TrainedModel) -> None:
    naive, _ = pasted(48, 40)
    before = {k: v.clone() for k, v in harmonizer.generator.state_dict().items()}
    tuned = engine.fine_tune(harmonizer, naive, 3, rng=engine.make_rng(1))
    after = tuned.generator.state_dict()
    assert set(after) == set(before) and all(after[k].shape == before[k].shape for k in before)
    assert any(not torch.equal(after[k], before[k]) for k in before if "weight" in k)
    assert all(
        torch.equal(harmonizer.generator.state_dict()[k], before[k]) for k in before
    )  # input untouched
    restored = engine.checkpoint.from_bytes(engine.checkpoint.to_bytes(tuned))
    assert restored.stage_shapes == harmonizer.stage_shapes


def test_editing_mode_trains_and_edits_keeping_the_detail() -> None:
    cfg = tiny_config(mode="editing", batch_norm=True, iters_per_stage=2)
    model = engine.train(synthetic_image(40, 48), cfg, rng=engine.make_rng(0))
    naive, mask = pasted(48, 40)
    assert engine.harmonize(model, naive, mask).shape == naive.shape
    naive, mask = textured_paste()
    out = engine.harmonize(model, naive, mask, rng=engine.make_rng(1))
    assert detail_kept(out, naive, mask.bool()) > DETAIL_KEPT_AT_LEAST


def test_hsv_round_trip() -> None:
    rgb = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-5)


def test_augmentations_keep_shape_and_range() -> None:
    image = synthetic_image(60, 80)
    rng = engine.make_rng(0)
    outputs = [harmonization_augment(image, rng) for _ in range(40)]
    assert all(o.shape == image.shape and o.min() >= -1 and o.max() <= 1 for o in outputs)
    assert sum(not torch.equal(o, image) for o in outputs) > 20  # cut-out fires with p = 0.9
    holes = cut_out((image + 1) / 2, engine.make_rng(3))
    assert (holes != (image + 1) / 2).any()
    shuffled = shuffle_patches(image, engine.make_rng(4))
    assert shuffled.shape == image.shape and not torch.equal(shuffled, image)
