"""engine/spec/srmath.py: SinGAN's schedule and our limits in plain Python, held to the spec's tables and to what
the torch implementation really produces."""

from __future__ import annotations

import math

import pytest

from engine.imresize import output_length
from engine.spec.srmath import (
    MAX_OUTPUT_PIXELS,
    head_activation_bytes,
    head_band_rows,
    sr_max_factor,
    sr_output_size,
    sr_pass_sizes,
    sr_passes,
    sr_request_problems,
    sr_schedule,
    step_mismatch,
)


@pytest.mark.parametrize(
    ("factor", "passes", "step", "r0"),
    [
        (1.5, 2, 1.224745, 0.816497),
        (2, 3, 1.259921, 0.793701),
        (3, 5, 1.245731, 0.802742),
        (4, 6, 1.259921, 0.793701),
        (8, 9, 1.259921, 0.793701),
    ],
)
def test_schedule_matches_singans_table(factor: float, passes: int, step: float, r0: float) -> None:
    k, s, r = sr_schedule(factor)
    assert (k, round(s, 6), round(r, 6)) == (passes, step, r0)
    assert s**k == pytest.approx(factor, rel=1e-12)


def test_passes_are_clamped_to_one_below_two_to_the_sixth() -> None:
    # the original divides by zero below 2^(1/6) ~ 1.1225 (K = 0); we run one pass of step f
    assert sr_passes(1.01) == 1 and sr_schedule(1.1) == (1, 1.1, 1 / 1.1)
    assert sr_passes(1.13) == 1 and sr_passes(1.5) == 2


def test_pass_sizes_follow_the_ceil_chain_of_the_spec_example() -> None:
    assert sr_pass_sizes(167, 250, 4) == [
        (211, 315),
        (266, 397),
        (336, 501),
        (424, 632),
        (535, 797),
        (675, 1005),
    ]
    assert sr_output_size(167, 250, 4) == (668, 1000)


@pytest.mark.parametrize("factor", [1.05, 1.5, 2.0, 2.3, 3.0, 4.0, 5.5, 8.0])
@pytest.mark.parametrize(("height", "width"), [(24, 36), (167, 250), (37, 19)])
def test_pass_sizes_are_what_imresize_produces_and_cover_the_output(
    height: int, width: int, factor: float
) -> None:
    _, step, _ = sr_schedule(factor)
    sizes = sr_pass_sizes(height, width, factor)
    h, w = height, width
    for size in sizes[:-1]:
        h, w = output_length(h, step), output_length(w, step)
        assert size == (h, w)
    out_h, out_w = sr_output_size(height, width, factor)
    assert sizes[-1][0] >= out_h and sizes[-1][1] >= out_w


def test_output_size_is_robust_to_float_error() -> None:
    assert 2.3 * 100 < 230  # the float product is 229.99999999999997
    assert sr_output_size(100, 100, 2.3) == (230, 230)
    assert sr_output_size(167, 250, 1.5) == (250, 375)


@pytest.mark.parametrize("factor", [1.0, 0.5, 8.01, math.inf, math.nan, -2.0])
def test_factors_out_of_range_are_refused(factor: float) -> None:
    assert sr_request_problems(167, 250, factor)
    with pytest.raises(ValueError, match="factor must be"):
        sr_schedule(factor)


def test_output_cap_names_the_largest_factor() -> None:
    assert sr_request_problems(167, 250, 8.0) == []  # 1336 x 2000 = 2.7 MP
    assert sr_max_factor(500, 500) == 4.09  # sqrt(4194304 / 250000) = 4.096
    (problem,) = sr_request_problems(500, 500, 4.1)
    assert "largest factor" in problem and "4.09" in problem
    assert sr_request_problems(500, 500, 4.09) == []
    assert sr_request_problems(100, 1000, 4.1) != []  # 4100 px wide: over the 4096-px side limit
    assert sr_request_problems(167, 250, 4, max_output_pixels=500_000) != []
    assert MAX_OUTPUT_PIXELS == 2048 * 2048


def test_step_mismatch_is_zero_on_the_octave_grid() -> None:
    assert step_mismatch(2, 4) == pytest.approx(0) and step_mismatch(8, 4) == pytest.approx(0)
    assert step_mismatch(3, 4) < 0.05 < step_mismatch(1.1, 4)


def test_activation_estimate_for_a_1000x668_output() -> None:
    # the last x4 pass of a 167x250 image is 675x1005: four 64-channel fp32 maps with the 10-px halo
    assert head_activation_bytes(675, 1005, 64) == 4 * 4 * 64 * 685 * 1015
    assert 650 * 2**20 < head_activation_bytes(675, 1005, 64) < 700 * 2**20


def test_bands_fit_the_budget() -> None:
    rows = head_band_rows(675, 1005, 64, 1, 256 * 2**20)
    assert rows == 248  # three bands for the last pass of a 1000x668 output
    assert head_activation_bytes(rows, 1005, 64) <= 256 * 2**20 < head_activation_bytes(rows + 1, 1005, 64)
    assert head_band_rows(675, 1005, 64, 1, 2**40) == 675 and head_band_rows(675, 1005, 64, 4, 10) == 1
