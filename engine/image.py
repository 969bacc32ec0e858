"""Image bytes in and out: decode an upload to a tensor, encode tensors as PNG, grids and animations.

Transparent pixels are composited on white (what a viewer shows; the original's channel slice would keep
whatever colour hides under alpha 0). Grayscale and palette images become RGB; EXIF orientation is applied.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps

FORMATS = ("PNG", "JPEG", "WEBP")
MIN_SIDE = 16
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000


def load_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """PNG/JPEG/WebP bytes -> [1, 3, H, W] float32 in [-1, 1]. Raises ValueError saying what is wrong."""
    if not data:
        raise ValueError("empty file: expected a PNG, JPEG or WebP image")
    picture = _open_checked(data, max_pixels)
    try:
        picture.load()
    except (OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise ValueError(f"image data is truncated or corrupt: {error}") from error
    return to_tensor(_to_rgb(ImageOps.exif_transpose(picture)))


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open without decoding and check format and header dimensions first (decompression bombs)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ValueError(f"image declares too many pixels (decompression bomb guard): {error}") from error
    except Image.UnidentifiedImageError as error:
        raise ValueError(f"not a supported image ({', '.join(FORMATS)}): {error}") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"image header is unreadable: {error}") from error
    width, height = picture.size
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"image is {width}x{height}; both sides must be at least {MIN_SIDE}px")
    if max(width, height) > MAX_SIDE or width * height > max_pixels:
        raise ValueError(
            f"image is {width}x{height}; at most {MAX_SIDE}px a side and {max_pixels:,} pixels are accepted"
        )
    return picture


def _to_rgb(picture: Image.Image) -> Image.Image:
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return picture.convert("RGB")


def to_tensor(picture: Image.Image) -> torch.Tensor:
    """RGB PIL image -> [1, 3, H, W] float32 in [-1, 1] (x / 255 * 2 - 1)."""
    array = np.asarray(picture.convert("RGB"), dtype=np.float32)  # [H, W, 3] in 0..255
    return torch.from_numpy(array / 255 * 2 - 1).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] or [1, 3, H, W] in [-1, 1] -> RGB PIL image (rounded to 8 bits)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    levels = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(levels.permute(1, 2, 0).numpy(), mode="RGB")


def to_png_bytes(image: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def grid(images: torch.Tensor, columns: int = 4, gap: int = 2) -> torch.Tensor:
    """[N, 3, H, W] -> [3, rows * (H + gap) - gap, columns * (W + gap) - gap] on a white background."""
    count, channels, height, width = images.shape
    rows = -(-count // columns)
    canvas = torch.ones(channels, rows * (height + gap) - gap, columns * (width + gap) - gap)
    for index, image in enumerate(images.detach().float().cpu()):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        canvas[:, top : top + height, left : left + width] = image
    return canvas


ANIMATION_FORMATS = ("gif", "webp", "mp4")


def animation_size(height: int, width: int, fmt: str) -> tuple[int, int]:
    """(height, width) of the frames an animation of [F, 3, height, width] frames holds: an MP4's sides are
    rounded up to even (yuv420p stores colour at half resolution), a GIF's or WebP's are as drawn."""
    if fmt == "mp4":
        return height + height % 2, width + width % 2
    return height, width


def frames_to_gif(frames: torch.Tensor, fps: float = 10.0) -> bytes:
    """[F, 3, H, W] in [-1, 1] -> an endlessly looping GIF."""
    return frames_to_animation(frames, fps, "gif")


def frames_to_animation(frames: torch.Tensor, fps: float = 10.0, fmt: str = "gif") -> bytes:
    """[F, 3, H, W] in [-1, 1] -> an endlessly looping GIF (256 colours a frame), lossless WebP, or an MP4
    (H.264, yuv420p, odd sides padded by one pixel: engine.video).

    GIF stores frame times in hundredths of a second, and viewers slow anything under 20 ms down."""
    if fmt not in ANIMATION_FORMATS:
        raise ValueError(f"format must be one of {', '.join(ANIMATION_FORMATS)}, not {fmt!r}")
    if fmt == "mp4":
        from engine.video import (
            frames_to_mp4,
        )  # PyAV loads FFmpeg's libraries: only when a video is asked for

        return frames_to_mp4(frames, fps)
    pictures = [to_pil(frame) for frame in frames]
    buffer = io.BytesIO()
    options: dict[str, object] = {"lossless": True} if fmt == "webp" else {}
    pictures[0].save(
        buffer,
        format=fmt.upper(),
        save_all=True,
        append_images=pictures[1:],
        duration=max(round(1000 / fps), 20),
        loop=0,
        **options,
    )
    return buffer.getvalue()
