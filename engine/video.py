"""Frames to an MP4 video: H.264 (libx264) in an MP4 container, yuv420p, through PyAV.

PyAV's wheels carry FFmpeg's libraries (libx264 among them), so no ffmpeg binary is needed. yuv420p, the one pixel
format every browser and phone plays, stores colour at half resolution and so needs even sides: an odd side is
padded by one pixel that repeats the last row or column (nothing of the model's image is cropped away).
MP4 has no loop flag: players loop it when asked (`<video loop>`).
"""

from __future__ import annotations

import math
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import torch

from engine.image import animation_size

CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
# x264's constant rate factor: 0 is lossless, 23 its default; 18 is about where differences stop being visible.
CRF = 18


def pad_to_even(frames: torch.Tensor) -> torch.Tensor:
    """[F, 3, H, W] -> [F, 3, H', W'] with H', W' even: the last row/column repeated where a side is odd."""
    height, width = frames.shape[-2:]
    even_h, even_w = animation_size(height, width, "mp4")
    pad_h, pad_w = even_h - height, even_w - width
    if pad_h == 0 and pad_w == 0:
        return frames
    return torch.nn.functional.pad(frames, (0, pad_w, 0, pad_h), mode="replicate")


def frames_to_mp4(frames: torch.Tensor, fps: float = 10.0) -> bytes:
    """[F, 3, H, W] in [-1, 1] -> MP4 bytes (H.264, yuv420p, sides padded to even, `fps` frames a second)."""
    if frames.dim() != 4 or frames.shape[1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"expected frames [F, 3, H, W], got {tuple(frames.shape)}")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, not {fps}")
    levels = ((pad_to_even(frames.detach().float().cpu()).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    pictures = levels.permute(0, 2, 3, 1).contiguous().numpy()  # [F, H', W', 3] RGB
    # faststart puts the index (moov) before the frames, so a player starts before the file has arrived; FFmpeg
    # does that in a second pass that reopens the output by name, hence a temporary file instead of memory
    with tempfile.TemporaryDirectory(prefix="consingan-mp4-") as folder:
        path = Path(folder) / "animation.mp4"
        with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream(CODEC, rate=Fraction(fps).limit_denominator(1001))
            assert isinstance(stream, av.video.stream.VideoStream)  # what libx264 gives; tells mypy too
            stream.height, stream.width = pictures.shape[1], pictures.shape[2]
            stream.pix_fmt = PIXEL_FORMAT
            stream.options = {"crf": str(CRF), "preset": "medium"}
            for picture in pictures:
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))  # flush the encoder's delayed frames
        return path.read_bytes()
