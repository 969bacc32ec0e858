"""An MP4 animation starts playing before it has arrived: its index (the `moov` box) comes before the frames
(`mdat`), which FFmpeg's faststart pass arranges; a non-finite frame rate is refused."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("av")

from engine.video import frames_to_mp4


def top_level_boxes(data: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("ascii"))
        if size < 8:
            break
        offset += size
    return boxes


def test_the_index_comes_before_the_frames() -> None:
    frames = torch.rand(6, 3, 27, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    boxes = top_level_boxes(frames_to_mp4(frames, fps=10))
    assert boxes[0] == "ftyp" and "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")


@pytest.mark.parametrize("fps", [math.inf, math.nan, 0.0, -1.0])
def test_a_frame_rate_that_is_not_a_positive_number_is_refused(fps: float) -> None:
    with pytest.raises(ValueError, match="fps must be a positive number"):
        frames_to_mp4(torch.zeros(2, 3, 8, 8), fps=fps)
