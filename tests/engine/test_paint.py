"""Paint-to-image (engine/paint.py): the painting's layout survives, the model's texture is added, and
quantization snaps colours to the training image's k-means palette."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import engine
from engine import TrainedModel
from engine.paint import kmeans_palette, model_palette, painting_input, quantize_to_palette
from tests.engine.conftest import tiny_config

PHOTO_MODEL = Path(__file__).parent / "data" / "colusseum_quick.safetensors"
# A quick-preset model (4 stages, 64 px, 32 channels, 400 iterations a stage) of the shared colusseum.png:
#   python -m engine --device cpu train colusseum.png --out runs/colusseum --preset quick   (14 min, 1 CPU)
# A model trained in the test (a minute of CPU) learns no texture to speak of: its finest-scale energy is a
# tenth of its photo's, and even its layout at stage 2 did not follow the painting.


@pytest.fixture(scope="module")
def photo_model() -> TrainedModel:
    return engine.checkpoint.from_bytes(PHOTO_MODEL.read_bytes(), device="cpu")


def shapes_painting(model: TrainedModel, scale: int = 2) -> torch.Tensor:
    """A drawn painting in the photo's palette, with another layout than the photo: sky above, a stone block
    on the RIGHT third (the photo's arena fills the middle), a dark pool band at the bottom. [1, 3, 2H, 2W]."""
    palette = model_palette(model, 1)  # [5, 3], darkest first
    height, width = (side * scale for side in model.stage_shapes[-1])
    sky = palette[torch.argmax(palette[:, 2] - palette[:, 0])]  # the bluest
    stone = palette[torch.argmax(palette[:, 0] - palette[:, 2])]  # the warmest
    image = sky.view(1, 3, 1, 1).expand(1, 3, height, width).clone()
    image[:, :, height // 3 : 3 * height // 4, 2 * width // 3 :] = stone.view(1, 3, 1, 1)
    image[:, :, 3 * height // 4 :, :] = palette[0].view(1, 3, 1, 1)
    return image


def low_pass(image: torch.Tensor, size: tuple[int, int] = (8, 10)) -> torch.Tensor:
    return F.adaptive_avg_pool2d(image, size)


def high_frequency_energy(image: torch.Tensor) -> float:
    """Mean squared difference to its own 3x3 box blur: what lives at the finest scale."""
    blurred = F.avg_pool2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return float(((image - blurred) ** 2).mean())


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_painting_keeps_its_layout_and_gains_the_photos_texture(
    photo_model: TrainedModel, stage: int
) -> None:
    painting = shapes_painting(photo_model)
    out = engine.paint_to_image(photo_model, painting, stage=stage, n=2, rng=engine.make_rng(1))
    top = photo_model.stage_shapes[-1]
    assert out.shape == (2, 3, *top)
    photo = photo_model.reals[-1]
    painted = F.interpolate(painting, size=top, mode="area")
    # layout: the coarse picture follows the painting, not the photo the model was trained on
    with_painting = correlation(low_pass(out[:1]), low_pass(painted))
    with_photo = correlation(low_pass(out[:1]), low_pass(photo))
    assert with_painting > 0.8, with_painting
    assert with_painting > with_photo + 0.2, (with_painting, with_photo)
    # texture: near the photo's finest-scale energy, far above that of the painting as it entered (blurred)
    result_hf, photo_hf = high_frequency_energy(out[:1]), high_frequency_energy(photo)
    entered = F.interpolate(painting_input(photo_model, painting, stage), size=top, mode="bicubic")
    # (a quick model's paintings reach 0.18 (stage 1) to 0.5 (stage 3) of its photo's energy; its own random
    # samples 0.6: a 64-px, 400-iteration model draws coarse texture)
    assert 0.15 * photo_hf < result_hf < 2 * photo_hf, (result_hf, photo_hf)
    assert result_hf > 5 * high_frequency_energy(entered), (result_hf, high_frequency_energy(entered))


def test_draws_differ_in_texture_and_repeat_with_a_seed(photo_model: TrainedModel) -> None:
    first = engine.paint_to_image(
        photo_model, shapes_painting(photo_model), stage=1, n=2, rng=engine.make_rng(5)
    )
    again = engine.paint_to_image(
        photo_model, shapes_painting(photo_model), stage=1, n=2, rng=engine.make_rng(5)
    )
    assert torch.equal(first, again)
    assert not torch.allclose(first[0], first[1], atol=1e-3)


def test_quantize_maps_every_colour_to_a_centre_of_the_training_palette(photo_model: TrainedModel) -> None:
    palette = model_palette(photo_model, 1)  # [5, 3]
    assert palette.shape == (engine.PALETTE_SIZE, 3)
    noisy = (
        shapes_painting(photo_model)
        + 0.1 * torch.randn(shapes_painting(photo_model).shape, generator=torch.Generator().manual_seed(0))
    ).clamp(-1, 1)
    snapped = quantize_to_palette(noisy, palette)
    colours = snapped.permute(0, 2, 3, 1).reshape(-1, 3)
    is_a_centre = (colours[:, None, :] == palette[None, :, :]).all(dim=2).any(dim=1)  # exactly, per pixel
    assert bool(is_a_centre.all())
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


def test_a_painting_in_roughly_the_photos_colours_renders_as_one_in_its_exact_colours(
    photo_model: TrainedModel,
) -> None:
    # drawn with stage 1's palette colours, at the training image's size (where quantizing happens)
    exact = shapes_painting(photo_model, scale=1)
    rough = (exact + 0.06).clamp(-1, 1)  # each colour a little off
    snapped = engine.paint_to_image(photo_model, rough, stage=1, quantize=True, rng=engine.make_rng(3))
    as_drawn = engine.paint_to_image(photo_model, exact, stage=1, rng=engine.make_rng(3))
    unsnapped = engine.paint_to_image(photo_model, rough, stage=1, rng=engine.make_rng(3))
    assert torch.equal(snapped, as_drawn)
    assert not torch.allclose(unsnapped, as_drawn, atol=1e-3)


@pytest.mark.parametrize("where", ["zero", "stage count", "negative"])
def test_a_stage_outside_1_to_last_is_refused(trained: TrainedModel, where: str) -> None:
    # the stage count is one past the last stage: the boundary, so a `<=` for `<` in the check is caught
    # (the last stage itself is accepted: the photo model's stage 3 in the layout test above)
    stage = {"zero": 0, "stage count": trained.stages_done, "negative": -1}[where]
    with pytest.raises(ValueError, match="stage must be between 1 and"):
        engine.paint_to_image(trained, torch.zeros(1, 3, 40, 48), stage=stage)


def test_bad_paintings_and_counts_are_refused(trained: TrainedModel) -> None:
    with pytest.raises(ValueError, match=r"painting must be \[1, 3, H, W\]"):
        engine.paint_to_image(trained, torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="n must be between"):
        engine.paint_to_image(trained, torch.zeros(1, 3, 40, 48), n=0)


def test_harmonization_models_cannot_paint(image: torch.Tensor) -> None:
    model = engine.train(image, tiny_config(mode="harmonization", iters_per_stage=2), rng=engine.make_rng(0))
    with pytest.raises(ValueError, match="harmonization model cannot paint"):
        engine.paint_to_image(model, torch.zeros(1, 3, 40, 48), stage=1)


def test_a_large_painting_is_quantized_at_the_training_images_size(
    photo_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an upload may be 4096² (max_image_pixels): clustering it pixel by pixel would take ~1 GB
    seen: list[tuple[int, ...]] = []
    original = engine.paint.quantize_to_palette

    def spy(painting: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(painting.shape))
        return original(painting, palette)

    monkeypatch.setattr(engine.paint, "quantize_to_palette", spy)
    large = torch.rand(1, 3, 900, 1200) * 2 - 1
    out = engine.paint_to_image(photo_model, large, stage=1, quantize=True, rng=engine.make_rng(1))
    top = photo_model.stage_shapes[photo_model.stages_done - 1]
    assert seen == [(1, 3, *top)]
    assert tuple(out.shape[-2:]) == tuple(top)
