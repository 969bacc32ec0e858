"""Whether a super-resolution request fits the service: SinGAN's output size ⌊f·h⌋ x ⌊f·w⌋ and the caps.

The engine's own rule (`engine/srmath.py`), written again for core, which never imports the engine; the
worker's tests hold the two to each other (tests/worker/test_worker_vocabulary.py).
"""

from __future__ import annotations

import math

from core.vocabulary import SR_FACTOR_MAX, SR_FACTOR_MIN, SR_MAX_OUTPUT_SIDE

FLOOR_TOLERANCE = 1e-9  # 2.3 * 100 is 229.99999999999997 in floats: it must not lose a row


def sr_output_size(height: int, width: int, factor: float) -> tuple[int, int]:
    return (
        math.floor(factor * height + FLOOR_TOLERANCE),
        math.floor(factor * width + FLOOR_TOLERANCE),
    )


def sr_max_factor(height: int, width: int, max_output_pixels: int) -> float:
    """The largest factor (two decimals, rounded down, at most SR_FACTOR_MAX) whose output fits the caps."""
    by_pixels = math.sqrt(max_output_pixels / (height * width))
    by_side = SR_MAX_OUTPUT_SIDE / max(height, width)
    return min(math.floor(100 * min(by_pixels, by_side)) / 100, SR_FACTOR_MAX)


def sr_request_problems(height: int, width: int, factor: float, max_output_pixels: int) -> list[str]:
    """Why enlarging an h x w image by `factor` is refused; empty when it is allowed."""
    if not math.isfinite(factor):
        return [f"factor must be a finite number, not {factor!r}"]
    if not SR_FACTOR_MIN < factor <= SR_FACTOR_MAX:
        return [f"factor must be larger than {SR_FACTOR_MIN:g} and at most {SR_FACTOR_MAX:g}, not {factor:g}"]
    out_h, out_w = sr_output_size(height, width, factor)
    if out_h * out_w > max_output_pixels or max(out_h, out_w) > SR_MAX_OUTPUT_SIDE:
        return [
            f"output {out_w}x{out_h} is over the limit ({max_output_pixels:,} pixels, {SR_MAX_OUTPUT_SIDE} px "
            f"a side); the largest factor for this {width}x{height} image is "
            f"{sr_max_factor(height, width, max_output_pixels):g}"
        ]
    return []
