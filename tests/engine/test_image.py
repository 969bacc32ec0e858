from __future__ import annotations

import pytest
import torch
from PIL import Image

import engine
from engine.image import grid, to_pil
from tests.engine.images import encode, gradient, png_header_only


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_supported_formats_decode_to_rgb_in_range(fmt: str) -> None:
    image = engine.load_image(encode(gradient(48, 40), fmt))
    assert image.shape == (1, 3, 40, 48) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1


def test_png_values_are_x_over_255_times_2_minus_1() -> None:
    picture = Image.new("RGB", (20, 20), (0, 255, 51))
    image = engine.load_image(encode(picture, "PNG"))
    assert image[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 51 / 255 * 2 - 1])


def test_transparency_is_composited_on_white() -> None:
    picture = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    picture.putpixel((0, 0), (255, 0, 0, 255))
    image = engine.load_image(encode(picture, "PNG"))
    assert image[0, :, 5, 5].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert image[0, :, 0, 0].tolist() == pytest.approx([1.0, -1.0, -1.0])


def test_grayscale_becomes_three_equal_channels() -> None:
    image = engine.load_image(encode(gradient(30, 20, "L"), "PNG"))
    assert image.shape == (1, 3, 20, 30)
    assert torch.equal(image[0, 0], image[0, 1]) and torch.equal(image[0, 1], image[0, 2])


def test_exif_orientation_is_honoured() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(gradient(48, 32), "JPEG", exif=exif)
    assert engine.load_image(data).shape == (1, 3, 48, 32)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is not an image at all", "not a supported image"),
        (encode(gradient(), "PNG")[:120], "truncated|corrupt|unreadable"),
        (encode(gradient(), "JPEG")[:200], "truncated|corrupt|unreadable"),
        (png_header_only(20000, 20000), "too many pixels|at most"),
        (png_header_only(8200, 100), "at most"),
        (encode(gradient(10, 40), "PNG"), "at least 16px"),
        (encode(gradient(48, 40), "GIF"), "not a supported image"),
        (encode(gradient(48, 40), "BMP"), "not a supported image"),
    ],
)
def test_bad_images_raise_clear_value_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        engine.load_image(data)


def test_png_round_trip_is_exact_at_eight_bits() -> None:
    image = engine.load_image(encode(gradient(), "PNG"))
    assert torch.allclose(engine.load_image(engine.to_png_bytes(image)), image, atol=1e-6)


def test_grid_lays_images_out_in_rows() -> None:
    canvas = grid(torch.zeros(5, 3, 10, 12), columns=4, gap=2)
    assert canvas.shape == (3, 2 * 12 - 2, 4 * 14 - 2)
    assert to_pil(canvas).size == (54, 22)
