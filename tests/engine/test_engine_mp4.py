"""MP4 animations: H.264 in an MP4 container, yuv420p, even sides, decoded back with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import engine
from engine import TrainedModel
from engine.cli import main as engine_cli
from tests.video import decode


def test_a_walk_of_the_model_becomes_an_h264_mp4_with_every_frame(trained: TrainedModel) -> None:
    frames = engine.animate(trained, 9, rng=engine.make_rng(0))  # [9, 3, H, W]
    data = engine.frames_to_animation(frames, 12.0, "mp4")
    video = decode(data)
    assert "mp4" in video.container.split(",")
    assert video.codec == "h264" and video.pix_fmt == "yuv420p"
    height, width = frames.shape[-2:]
    assert (video.height, video.width) == engine.animation_size(height, width, "mp4")
    assert video.height % 2 == 0 and video.width % 2 == 0
    assert len(video.frames) == 9 and video.average_rate == 12
    # the frames are the walk's: close to their source after yuv420p and x264 at crf 18
    sources = ((frames.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    for picture, source in zip(video.frames, sources, strict=True):
        assert np.abs(picture[:height, :width].astype(np.float32) - source).mean() < 8


def test_frames_keep_their_order() -> None:
    # ten flat frames from dark to light: the decoded brightness must rise frame by frame
    levels = torch.linspace(-0.8, 0.8, 10)
    frames = levels.view(10, 1, 1, 1).expand(10, 3, 24, 32).contiguous()
    decoded = decode(engine.frames_to_animation(frames, 10.0, "mp4")).frames
    means = [float(picture.mean()) for picture in decoded]
    assert len(means) == 10 and means == sorted(means) and means[-1] - means[0] > 150, means


@pytest.mark.parametrize(("height", "width"), [(27, 33), (28, 34), (27, 34), (28, 33)])
def test_odd_sides_are_padded_by_one_pixel_repeating_the_edge(height: int, width: int) -> None:
    # a left-to-right ramp in red, a top-to-bottom ramp in green: the padded row/column must repeat the last one
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    frame = torch.stack([xs, ys, torch.zeros_like(xs)])
    video = decode(engine.frames_to_animation(frame.expand(3, 3, height, width), 5.0, "mp4"))
    even_h, even_w = height + height % 2, width + width % 2
    assert (video.height, video.width) == (even_h, even_w) == video.frames[0].shape[:2]
    picture = video.frames[-1].astype(float)
    if width % 2:  # the extra column repeats the last: as red as it
        assert abs(picture[:, -1, 0].mean() - picture[:, -2, 0].mean()) < 6
    if height % 2:
        assert abs(picture[-1, :, 1].mean() - picture[-2, :, 1].mean()) < 6
    assert picture[:, -1, 0].mean() > 200 and picture[:, 0, 0].mean() < 50  # the ramp survived the encoding


def test_frame_rate_keeps_fractional_fps() -> None:
    video = decode(engine.frames_to_animation(torch.zeros(4, 3, 16, 16), 7.5, "mp4"))
    assert video.average_rate == Fraction(15, 2) and len(video.frames) == 4


def test_an_mp4_is_smaller_than_the_gif_of_the_same_frames(trained: TrainedModel) -> None:
    frames = engine.animate(trained, 20, rng=engine.make_rng(1))
    assert len(engine.frames_to_animation(frames, 10.0, "mp4")) < len(
        engine.frames_to_animation(frames, 10.0, "gif")
    )


def test_cli_writes_the_format_its_out_suffix_names(trained: TrainedModel, tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(engine.checkpoint.to_bytes(trained))
    out = tmp_path / "walk.mp4"
    assert engine_cli(["--device", "cpu", "animate", str(tmp_path), "--out", str(out), "--frames", "5"]) == 0
    video = decode(out.read_bytes())
    assert video.codec == "h264" and len(video.frames) == 5
    forced = tmp_path / "walk.bin"
    args = [
        "--device",
        "cpu",
        "animate",
        str(tmp_path),
        "--out",
        str(forced),
        "--frames",
        "4",
        "--format",
        "mp4",
    ]
    assert engine_cli(args) == 0
    assert len(decode(forced.read_bytes()).frames) == 4
