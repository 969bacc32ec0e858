"""MATLAB-style resize, checked against weights derived by hand (see the comments)."""

from __future__ import annotations

import pytest
import torch

from engine.imresize import cubic, imresize, output_length, quantize, resize_to, weight_matrix


def test_cubic_kernel_values() -> None:
    x = torch.tensor([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5], dtype=torch.float64)
    expected = [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0]
    assert cubic(x).tolist() == pytest.approx(expected, abs=1e-12)


def test_halving_four_pixels_matches_hand_derived_weights() -> None:
    # Output pixel 1 samples at 1.5 (1-based); the antialiased kernel 0.5 * cubic(0.5 d) has taps at
    # 0.0117, 0.0352, 0.1133, 0.4336 (mirrored ones folded onto pixels 1-4):
    #   p1 = 0.43359375 + 0.11328125, p2 = 0.43359375 - 0.03515625,
    #   p3 = 0.11328125 - 0.01171875, p4 = -0.03515625 - 0.01171875.
    matrix = weight_matrix(4, 2, 0.5)
    first = [0.546875, 0.3984375, 0.1015625, -0.046875]
    assert matrix[0].tolist() == pytest.approx(first, abs=1e-12)
    assert matrix[1].tolist() == pytest.approx(first[::-1], abs=1e-12)
    ramp = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    assert (matrix @ ramp).tolist() == pytest.approx([0.4609375, 2.5390625], abs=1e-12)


def test_doubling_two_pixels_matches_hand_derived_weights() -> None:
    # Output pixel 1 samples at 0.75: cubic taps 0.2266 (pixel 0 -> mirrored to 1), 0.8672 (pixel 1),
    # -0.0703 (pixel 2), -0.0234 (pixel -1 -> mirrored to 2).
    matrix = weight_matrix(2, 4, 2.0)
    assert matrix[0].tolist() == pytest.approx([1.09375, -0.09375], abs=1e-12)
    assert matrix[3].tolist() == pytest.approx([-0.09375, 1.09375], abs=1e-12)


@pytest.mark.parametrize(("length", "scale"), [(7, 0.37), (50, 0.5), (13, 1.7), (250, 0.15)])
def test_rows_sum_to_one_and_size_is_ceil(length: int, scale: float) -> None:
    out = output_length(length, scale)
    matrix = weight_matrix(length, out, scale)
    assert matrix.shape == (out, length)
    assert torch.allclose(matrix.sum(1), torch.ones(out, dtype=torch.float64))


def test_constant_image_stays_constant_and_sizes_follow_ceil() -> None:
    image = torch.full((1, 3, 33, 47), 0.2)
    out = imresize(image, 0.41)
    assert out.shape == (1, 3, 14, 20)  # ceil(33 * 0.41), ceil(47 * 0.41)
    assert torch.allclose(out, torch.full_like(out, float(quantize(image)[0, 0, 0, 0])), atol=1e-6)


def test_scale_one_only_quantises() -> None:
    image = torch.rand(1, 3, 9, 11) * 2 - 1
    out = imresize(image, 1.0)
    assert torch.equal(out, quantize(image))
    assert torch.allclose(out, image, atol=1 / 255)


def test_axes_are_separable_and_independent() -> None:
    image = torch.rand(1, 1, 6, 8, dtype=torch.float64)
    out = resize_to(image, (3, 4), (0.5, 0.5))
    rows, cols = weight_matrix(6, 3, 0.5), weight_matrix(8, 4, 0.5)
    assert torch.allclose(out[0, 0], rows @ image[0, 0] @ cols.T)


def test_close_to_torch_antialiased_bicubic_but_not_equal() -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
    ours = resize_to(image, (32, 32), (0.5, 0.5))
    theirs = torch.nn.functional.interpolate(image, size=(32, 32), mode="bicubic", antialias=True)
    assert (ours - theirs).abs().mean() < 0.05
