"""Paint-to-image (engine/paint.py): the painting's layout survives, the model's texture is added, and
quantization snaps colours to the training image's k-means palette."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import engine
from engine import TrainedModel
from engine.paint import kmeans_palette, model_palette, painting_input, quantize_to_palette
from tests.engine.conftest import tiny_config

HEIGHT, WIDTH = 32, 40


def layout(height: int = HEIGHT, width: int = WIDTH) -> torch.Tensor:
    """Flat colour regions: a warm left half, a cool right half and a dark band: [1, 3, H, W]."""
    image = torch.empty(1, 3, height, width)
    image[:, :, :, : width // 2] = torch.tensor([0.6, 0.1, -0.5]).view(1, 3, 1, 1)
    image[:, :, :, width // 2 :] = torch.tensor([-0.5, 0.0, 0.6]).view(1, 3, 1, 1)
    image[:, :, height // 2 : height // 2 + 6, :] = torch.tensor([-0.6, -0.6, -0.6]).view(1, 3, 1, 1)
    return image


def textured_photo() -> torch.Tensor:
    """The layout with a fine grain on top (pixel noise, fixed): the texture a model trained on it adds."""
    grain = torch.randn(1, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(7))
    return (layout() + 0.25 * grain).clamp(-1, 1)


def low_pass(image: torch.Tensor, size: tuple[int, int] = (8, 10)) -> torch.Tensor:
    return F.adaptive_avg_pool2d(image, size)


def high_frequency_energy(image: torch.Tensor) -> float:
    """Mean squared difference to its own 3x3 box blur: what lives at the finest scale."""
    blurred = F.avg_pool2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return float(((image - blurred) ** 2).mean())


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def photo_model() -> TrainedModel:
    cfg = tiny_config(
        train_stages=4, iters_per_stage=200, max_size=WIDTH, min_size=16, channels=16, lr_scale=0.5
    )
    return engine.train(textured_photo(), cfg, rng=engine.make_rng(0))


def painting() -> torch.Tensor:
    """A painting with another layout than the photo: the halves swapped and the band moved up, no texture,
    at twice the model's size."""
    painted = torch.flip(layout(), dims=[3])
    painted = torch.roll(painted, shifts=-8, dims=2)
    return F.interpolate(painted, scale_factor=2, mode="nearest")


@pytest.mark.parametrize("stage", [1, 2])
def test_painting_keeps_its_layout_and_gains_the_photos_texture(
    photo_model: TrainedModel, stage: int
) -> None:
    out = engine.paint_to_image(photo_model, painting(), stage=stage, n=2, rng=engine.make_rng(1))
    assert out.shape == (2, 3, *photo_model.stage_shapes[-1])
    top = photo_model.stage_shapes[-1]
    painted_small = F.interpolate(painting(), size=top, mode="area")
    # layout: the coarse picture follows the painting, not the photo it was trained on
    with_painting = correlation(low_pass(out[:1]), low_pass(painted_small))
    with_photo = correlation(low_pass(out[:1]), low_pass(textured_photo()))
    assert with_painting > 0.9, with_painting
    assert with_painting > with_photo + 0.3, (with_painting, with_photo)
    # texture: close to the photo's finest-scale energy, far above what the painting brought in
    photo_hf = high_frequency_energy(photo_model.reals[-1])
    result_hf = high_frequency_energy(out[:1])
    injected = F.interpolate(painting_input(photo_model, painting(), stage), size=top, mode="bicubic")
    assert 0.4 * photo_hf < result_hf < 2.5 * photo_hf, (result_hf, photo_hf)
    assert result_hf > 5 * high_frequency_energy(injected), (result_hf, high_frequency_energy(injected))


def test_draws_differ_in_texture_and_repeat_with_a_seed(photo_model: TrainedModel) -> None:
    first = engine.paint_to_image(photo_model, painting(), stage=1, n=2, rng=engine.make_rng(5))
    again = engine.paint_to_image(photo_model, painting(), stage=1, n=2, rng=engine.make_rng(5))
    assert torch.equal(first, again)
    assert not torch.allclose(first[0], first[1], atol=1e-3)


def test_quantize_maps_every_colour_to_a_centre_of_the_training_palette(photo_model: TrainedModel) -> None:
    palette = model_palette(photo_model, 1)  # [5, 3]
    assert palette.shape == (engine.PALETTE_SIZE, 3)
    noisy = (
        painting() + 0.1 * torch.randn(painting().shape, generator=torch.Generator().manual_seed(0))
    ).clamp(-1, 1)
    snapped = quantize_to_palette(noisy, palette)
    colours = snapped.permute(0, 2, 3, 1).reshape(-1, 3)
    distance_to_palette = torch.cdist(colours, palette).min(dim=1).values
    assert float(distance_to_palette.max()) == 0.0
    # and each pixel took the nearest centre, not just any
    chosen = torch.cdist(colours, palette).argmin(dim=1)
    nearest = torch.cdist(noisy.permute(0, 2, 3, 1).reshape(-1, 3), palette).argmin(dim=1)
    assert torch.equal(chosen, nearest)


def test_kmeans_finds_the_flat_colours_of_an_image() -> None:
    colours = torch.tensor(
        [[-0.9, -0.9, -0.9], [0.8, 0.1, -0.2], [-0.1, 0.7, 0.3], [0.2, -0.4, 0.9], [1, 1, 1]]
    )
    image = colours[torch.arange(40 * 30) % 5].T.reshape(1, 3, 30, 40)
    found = kmeans_palette(image, 5)
    matched = torch.cdist(found, colours).min(dim=1).values
    assert float(matched.max()) < 1e-5
    assert torch.equal(found, kmeans_palette(image, 5))  # a fixed seed: the same palette every time


def test_quantized_painting_renders_and_differs_from_the_plain_one(photo_model: TrainedModel) -> None:
    off_colour = (painting() * 0.6 + 0.2).clamp(-1, 1)  # roughly, not exactly, the photo's colours
    plain = engine.paint_to_image(photo_model, off_colour, stage=2, rng=engine.make_rng(3))
    snapped = engine.paint_to_image(photo_model, off_colour, stage=2, quantize=True, rng=engine.make_rng(3))
    assert plain.shape == snapped.shape
    # the quantized painting carries the photo's own colours: its mean colour is closer to the photo's
    photo_mean = photo_model.reals[-1].mean(dim=(2, 3))
    assert (snapped.mean(dim=(2, 3)) - photo_mean).norm() < (plain.mean(dim=(2, 3)) - photo_mean).norm()


@pytest.mark.parametrize("stage", [0, 4, -1])
def test_a_stage_outside_1_to_last_is_refused(trained: TrainedModel, stage: int) -> None:
    with pytest.raises(ValueError, match="stage must be between 1 and"):
        engine.paint_to_image(trained, painting(), stage=stage)


def test_bad_paintings_and_counts_are_refused(trained: TrainedModel) -> None:
    with pytest.raises(ValueError, match=r"painting must be \[1, 3, H, W\]"):
        engine.paint_to_image(trained, torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="n must be between"):
        engine.paint_to_image(trained, painting(), n=0)


def test_harmonization_models_cannot_paint(image: torch.Tensor) -> None:
    model = engine.train(image, tiny_config(mode="harmonization", iters_per_stage=2), rng=engine.make_rng(0))
    with pytest.raises(ValueError, match="harmonization model cannot paint"):
        engine.paint_to_image(model, painting(), stage=1)
