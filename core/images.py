"""Upload validation with Pillow: format, header dimensions and pixel count BEFORE decoding, then a full decode.

The order matters: `Image.open` reads only the header, so a 20000x20000 (or decompression-bomb) file is refused
without allocating its pixels; `load()` afterwards catches truncated and corrupt files.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import InvalidImage, UnsupportedMediaType

ACCEPTED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class ValidImage:
    png: bytes  # the decoded image re-encoded as RGB PNG: what is stored as models/{id}/input.png
    width: int
    height: int
    source_format: str  # PNG, JPEG or WEBP
    sha256: str  # of the uploaded bytes (idempotency request hash)


def _open_header(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InvalidImage("the image header declares far too many pixels") from e
    except UnidentifiedImageError as e:
        raise InvalidImage("the upload is not a readable image (PNG, JPEG or WebP expected)") from e
    except Exception as e:  # a header cut short or corrupt: OSError, SyntaxError, struct.error, ...
        raise InvalidImage(f"the image header is truncated or corrupt: {e}") from e


def _check_dimensions(image: Image.Image, max_pixels: int, max_side: int, min_side: int) -> None:
    width, height = image.size
    if width * height > max_pixels or max(width, height) > max_side:
        raise InvalidImage(
            f"the image is {width}x{height}; at most {max_side} px per side and {max_pixels} pixels are accepted",
            width=width,
            height=height,
        )
    if min(width, height) < min_side:
        raise InvalidImage(f"the image is {width}x{height}; each side must be at least {min_side} px")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Transparent pixels composited on white, as the engine does (a plain convert would keep whatever
    colour hides under alpha 0, so the service and the CLI would train on different images)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def validate_image(data: bytes, *, max_pixels: int, max_side: int, min_side: int) -> ValidImage:
    if not data:
        raise InvalidImage("the image file is empty")
    image = _open_header(data)
    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedMediaType(f"{image.format} images are not accepted; send PNG, JPEG or WebP")
    _check_dimensions(image, max_pixels, max_side, min_side)
    source_format = image.format
    try:
        image.load()
        rgb = _to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as e:
        raise InvalidImage("the image declares far too many pixels") from e
    except Exception as e:  # any decoder failure (OSError, SyntaxError, struct.error, ...) is a bad upload
        raise InvalidImage(f"the image data is truncated or corrupt: {e}") from e
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return ValidImage(
        png=out.getvalue(),
        width=rgb.width,
        height=rgb.height,
        source_format=source_format,
        sha256=hashlib.sha256(data).hexdigest(),
    )
