"""Stage sizes: the spec's measured numbers, and an independent transcription of the original's formula."""

from __future__ import annotations

import math

import pytest

from engine import TrainConfig, stage_sizes
from engine.pyramid import build_pyramid, check_image_size
from tests.engine.conftest import synthetic_image


def reference_sizes(height: int, width: int, cfg: TrainConfig) -> list[tuple[int, int]]:
    """Straight from spec §1, written independently of engine.pyramid."""
    scale1 = min(cfg.max_size / max(height, width), 1)
    h, w = math.ceil(height * scale1), math.ceil(width * scale1)
    last = cfg.train_stages - 1
    factor = math.pow(cfg.min_size / min(h, w), 1 / last)
    sizes = []
    for i in range(last):
        if cfg.mode == "harmonization":
            scale = math.pow(factor, last - i)
        else:
            scale = math.pow(factor, ((last - 1) / math.log(last)) * math.log(last - i) + 1)
        sizes.append((math.ceil(h * scale), math.ceil(w * scale)))
    return [*sizes, (h, w)]


def test_angkorwat_matches_the_measured_original() -> None:
    expected = [(25, 38), (31, 47), (41, 61), (60, 89), (115, 171), (167, 250)]
    assert stage_sizes(433, 650, TrainConfig()) == expected
    assert stage_sizes(650, 433, TrainConfig()) == [(w, h) for h, w in expected]


@pytest.mark.parametrize(
    ("height", "width"), [(433, 650), (250, 250), (1080, 1920), (300, 120), (180, 640), (100, 100), (64, 96)]
)
@pytest.mark.parametrize("mode", ["generation", "retarget", "animation", "harmonization"])
def test_sizes_follow_the_original_formula(height: int, width: int, mode: str) -> None:
    cfg = TrainConfig.for_mode(mode, min_size=20)  # type: ignore[arg-type]
    assert stage_sizes(height, width, cfg) == reference_sizes(height, width, cfg)


def test_harmonization_pyramid_is_geometric() -> None:
    cfg = TrainConfig.for_mode("harmonization")
    assert stage_sizes(433, 650, cfg) == [(120, 180), (142, 212), (167, 250)]


def test_two_stages_use_the_limit_of_the_spacing_formula() -> None:
    cfg = TrainConfig(train_stages=2, max_size=32, min_size=16)
    assert stage_sizes(40, 48, cfg) == [(16, 19), (27, 32)]  # 32 * 16 / 27 = 18.96


def test_never_upsamples_small_images() -> None:
    assert stage_sizes(100, 120, TrainConfig())[-1] == (100, 120)


def test_build_pyramid_resizes_to_the_stage_sizes() -> None:
    cfg = TrainConfig(train_stages=3, max_size=32, min_size=16)
    reals = build_pyramid(synthetic_image(40, 48), cfg)
    assert [tuple(r.shape[2:]) for r in reals] == stage_sizes(40, 48, cfg)
    assert all(r.min() >= -1 and r.max() <= 1 for r in reals)


def test_too_small_image_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"shorter side is below min_size=25 px.*larger image"):
        check_image_size(20, 30, TrainConfig())


def test_too_elongated_image_says_what_to_change() -> None:
    with pytest.raises(ValueError, match=r"trains at 250x17.*closer to square \(at most about 10:1"):
        check_image_size(20, 300, TrainConfig())


def test_requested_config_pulls_min_size_down_with_a_small_max_size() -> None:
    assert TrainConfig.requested("quick", max_size=20).min_size == 20
    assert TrainConfig.requested("quick", max_size=20, min_size=16).min_size == 16
    assert TrainConfig.requested("paper", "harmonization") == TrainConfig.preset("paper", "harmonization")
    with pytest.raises(ValueError, match="cannot set channels"):
        TrainConfig.requested("quick", channels=8)
