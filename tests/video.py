"""Decoding an MP4 back with PyAV for the tests, as plain values."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


@dataclass(frozen=True)
class Video:
    """What the tests read of a video, copied out while its container is open: PyAV frees a stream's objects
    when the container closes, so a stream's attributes read after the `with` are garbage or a crash."""

    container: str  # the demuxer's names, comma-separated ("mov,mp4,m4a,3gp,3g2,mj2")
    codec: str
    pix_fmt: str | None
    width: int
    height: int
    average_rate: Fraction | None
    frames: list[np.ndarray]  # each [H, W, 3] uint8 RGB


def decode(data: bytes) -> Video:
    """The first video stream's facts and all its frames."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return Video(
            container=container.format.name,
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            width=stream.width,
            height=stream.height,
            average_rate=stream.average_rate,
            frames=frames,
        )
