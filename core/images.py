"""Upload validation with Pillow: format, header dimensions and pixel count BEFORE decoding, then a decode.

The order matters: `Image.open` reads only the header, so a 20000x20000 (or decompression-bomb) file is refused
without allocating its pixels; `load()` afterwards catches truncated and corrupt files. Memory: a training JPEG
is decoded at reduced size (`reduce_to`), no full-size copy is made that is not needed, and large freed buffers
are returned to the OS. How many decodes run at once is the API's business (`api/uploads.py`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import math
import warnings
from collections.abc import Callable
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


def _check_sides(image: Image.Image, max_side: int, min_side: int) -> None:
    width, height = image.size
    if max(width, height) > max_side:
        raise InvalidImage(
            f"the image is {width}x{height}; at most {max_side} px per side are accepted",
            width=width,
            height=height,
        )
    if min(width, height) < min_side:
        raise InvalidImage(f"the image is {width}x{height}; each side must be at least {min_side} px")


def _check_pixels(image: Image.Image, declared: tuple[int, int], max_pixels: int) -> None:
    """On the size that will be decoded: a JPEG drafted at reduced size passes where its full size would not."""
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidImage(
            f"the image is {declared[0]}x{declared[1]}; at most {max_pixels:,} pixels are decoded "
            f"(e.g. {_square_side(max_pixels)}x{_square_side(max_pixels)}); send a smaller image",
            width=declared[0],
            height=declared[1],
        )


def _square_side(pixels: int) -> int:
    return int(pixels**0.5)


def _draft(image: Image.Image, longer_side: int, min_side: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 of its size (DCT scaling: no full-size buffer), keeping its longer
    side at least `longer_side` and its shorter side at least `min_side`. Other formats decode whole."""
    if image.format != "JPEG":
        return
    width, height = image.size
    scale = longer_side / max(width, height)
    if scale >= 1:
        return
    wanted = (max(math.ceil(width * scale), min_side), max(math.ceil(height * scale), min_side))
    image.draft("RGB" if image.mode in ("RGB", "YCbCr") else image.mode, wanted)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Transparent pixels composited on white, as the engine does (a plain convert would keep whatever
    colour hides under alpha 0, so the service and the CLI would train on different images). Pasting with
    the alpha as mask gives exactly `alpha_composite` over opaque white, with one full-size buffer less."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return image if image.mode == "RGB" else image.convert("RGB")


def validate_image(
    data: bytes, *, max_pixels: int, max_side: int, min_side: int, reduce_to: int | None = None
) -> ValidImage:
    """Check, decode and re-encode an upload. With `reduce_to`, a JPEG may be decoded at a reduced size whose
    longer side stays at least `reduce_to` (a training image: the engine never trains above 1024 px)."""
    if not data:
        raise InvalidImage("the image file is empty")
    image = _open_header(data)
    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedMediaType(f"{image.format} images are not accepted; send PNG, JPEG or WebP")
    if getattr(image, "is_animated", False):
        raise UnsupportedMediaType(
            f"the image is animated ({getattr(image, 'n_frames', '?')} frames); send a still PNG, JPEG or WebP"
        )
    _check_sides(image, max_side, min_side)
    declared, source_format = image.size, image.format
    if reduce_to:
        _draft(image, reduce_to, min_side)
    _check_pixels(image, declared, max_pixels)
    try:
        try:
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            rgb = _to_rgb(image)
        except Image.DecompressionBombError as e:
            raise InvalidImage("the image declares far too many pixels") from e
        except (
            Exception
        ) as e:  # any decoder failure (OSError, SyntaxError, struct.error, ...) is a bad upload
            raise InvalidImage(f"the image data is truncated or corrupt: {e}") from e
        if rgb is not image:
            image.close()  # the decoded source, before the encoder's buffers join the RGB copy
        out = io.BytesIO()
        rgb.save(out, format="PNG")
        width, height = rgb.size
        rgb.close()
    finally:
        image.close()
        if declared[0] * declared[1] >= LARGE_DECODE_PIXELS:
            return_freed_memory()
    return ValidImage(
        png=out.getvalue(),
        width=width,
        height=height,
        source_format=source_format,
        sha256=hashlib.sha256(data).hexdigest(),
    )


# Freed image buffers stay in glibc's per-thread arenas (RSS that never shrinks) unless trimmed.
LARGE_DECODE_PIXELS = 1_000_000


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_TRIM = _malloc_trim()


def return_freed_memory() -> None:
    """Give the memory of large freed buffers back to the OS (glibc `malloc_trim`; a no-op elsewhere)."""
    if _TRIM is not None:
        _TRIM(0)
