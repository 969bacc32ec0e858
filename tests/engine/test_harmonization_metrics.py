"""Lab conversion and the two harmonization metrics (detail kept, colour distance) on hand-made images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.colour import rgb_to_lab
from engine.harmonization_metrics import (
    colour_distance,
    colour_statistics,
    detail_kept,
    surrounding_ring,
)
from tests.engine.conftest import checkerboard, synthetic_image


def pixels(*rgb: tuple[float, float, float]) -> torch.Tensor:
    """[1, 3, 1, N] from N colours given in [0, 1]."""
    return (torch.tensor(rgb, dtype=torch.float32).T[None, :, None, :]) * 2 - 1


def test_lab_of_reference_colours() -> None:
    # white, black, sRGB red, sRGB 50% grey (values from the CIE formulas with the D65 white)
    lab = rgb_to_lab(pixels((1, 1, 1), (0, 0, 0), (1, 0, 0), (0.5, 0.5, 0.5)))[0, :, 0].T
    expected = torch.tensor([[100.0, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [53.39, 0, 0]])
    assert torch.allclose(lab, expected, atol=0.02)


def test_detail_kept_is_one_for_the_same_detail_and_low_for_a_blur() -> None:
    image = synthetic_image(48, 64)
    image[..., 8:40, 8:56] = checkerboard(32, 48) * 1.6 - 0.8
    region = torch.zeros(1, 1, 48, 64, dtype=torch.bool)
    region[..., 8:40, 8:56] = True
    assert detail_kept(image, image, region) == pytest.approx(1.0)
    blurred = F.interpolate(F.avg_pool2d(image, 4), size=(48, 64), mode="bilinear")
    assert detail_kept(blurred, image, region) < 0.3
    with pytest.raises(ValueError, match="flat"):
        detail_kept(image, torch.zeros_like(image), region)


def test_colour_statistics_and_distance() -> None:
    image = torch.zeros(1, 3, 10, 10)
    image[..., :5] = 1.0  # left half white, right half grey
    left = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
    left[..., :5] = True
    white, grey = colour_statistics(image, left), colour_statistics(image, ~left)
    assert torch.allclose(white, torch.tensor([100.0, 0, 0, 0, 0, 0], dtype=torch.float64), atol=1e-3)
    assert colour_distance(white, grey) == pytest.approx(100 - 53.39, abs=0.02)
    both = colour_statistics(image, torch.ones_like(left))
    assert both[3] == pytest.approx((100 - 53.39) / 2, abs=0.02)  # std of two equal halves


def test_surrounding_ring_is_outside_and_within_reach() -> None:
    region = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    region[..., 4, 4] = True
    ring = surrounding_ring(region, 1)
    assert int(ring.sum()) == 8 and not ring[..., 4, 4]
    assert int(surrounding_ring(region, 2).sum()) == 24
