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
