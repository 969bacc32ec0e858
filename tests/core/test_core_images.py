"""Upload validation: header checks before decoding, then a full decode."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.errors import InvalidImage, UnsupportedMediaType
from core.images import validate_image
from tests.service_fixtures import png_header_only, scene_image

LIMITS = {"max_pixels": 40_000_000, "max_side": 8192, "min_side": 16}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepted_formats_are_normalised_to_rgb_png(fmt: str) -> None:
    valid = validate_image(scene_image(48, 40, fmt), **LIMITS)
    assert (valid.width, valid.height, valid.source_format) == (48, 40, fmt)
    with Image.open(io.BytesIO(valid.png)) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (48, 40)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImage),
        (b"hello, this is not an image", InvalidImage),
        (scene_image()[:200], InvalidImage),  # truncated
        (png_header_only(20000, 20000), InvalidImage),  # 400 M pixels claimed in the header
        (png_header_only(100_000, 100_000), InvalidImage),  # past Pillow's own bomb limit
        (png_header_only(9000, 10), InvalidImage),  # one side too long
        (scene_image(8, 8), InvalidImage),  # too small to train on
        (scene_image(48, 40, "GIF"), UnsupportedMediaType),
        (scene_image(48, 40, "BMP"), UnsupportedMediaType),
    ],
    ids=[
        "empty",
        "not-image",
        "truncated",
        "20000x20000",
        "1e10-pixels",
        "too-wide",
        "too-small",
        "gif",
        "bmp",
    ],
)
def test_bad_images_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        validate_image(data, **LIMITS)


def test_transparent_pixels_are_stored_on_white_like_the_engine_reads_them() -> None:
    import io

    from PIL import Image

    from core.images import validate_image

    picture = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    picture.putpixel((0, 0), (255, 0, 0, 255))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    stored = Image.open(
        io.BytesIO(validate_image(buffer.getvalue(), max_pixels=10**6, max_side=100, min_side=16).png)
    )
    assert stored.mode == "RGB"
    assert stored.getpixel((5, 5)) == (255, 255, 255)
    assert stored.getpixel((0, 0)) == (255, 0, 0)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def test_a_training_jpeg_is_decoded_reduced_and_keeps_1024_px_on_its_longer_side() -> None:
    photo = _encode(Image.new("RGB", (6000, 4000), (30, 120, 200)), "JPEG")
    limits = {**LIMITS, "max_pixels": 4096 * 4096}
    valid = validate_image(photo, **limits, reduce_to=1024)
    assert (valid.width, valid.height) == (1500, 1000)  # decoded at 1/4: no 24 Mpx buffer
    with pytest.raises(InvalidImage, match="6000x4000; at most 16,777,216 pixels"):
        validate_image(photo, **limits)  # a harmonization's naive image is kept at full size


def test_reduced_decoding_keeps_a_thin_image_above_the_minimum_side() -> None:
    strip = _encode(Image.new("RGB", (8000, 20), (30, 120, 200)), "JPEG")
    valid = validate_image(strip, **LIMITS, reduce_to=1024)
    assert valid.height >= 16 and valid.width >= 1024


def test_the_default_pixel_cap_refuses_a_small_file_that_decodes_to_40_megapixels() -> None:
    from core.settings import get_settings

    settings = get_settings()
    bomb = png_header_only(8000, 5000)  # the 116 KB PNG decoded to 8000x5000
    with pytest.raises(InvalidImage, match="8000x5000"):
        validate_image(
            bomb,
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            min_side=settings.min_image_side,
        )


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_are_refused_like_gif(fmt: str) -> None:
    frames = [Image.new("RGB", (48, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    animated = _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedMediaType, match="animated \\(2 frames\\)"):
        validate_image(animated, **LIMITS)
    assert validate_image(_encode(frames[0], fmt), **LIMITS).width == 48  # a still one is fine
