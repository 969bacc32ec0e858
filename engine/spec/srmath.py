"""Super-resolution numbers in plain Python: the pass schedule, output sizes and request limits.

No torch, no numpy: numbers only (part of `engine.spec`), so the limits are tested on their own
(`tests/engine/test_sr_math.py`) and the service's core checks requests with them without loading torch.

SinGAN's schedule (superres-spec.md §1.1): K passes of the same upsampling step, step = f^(1/K) with
K = round(3·log2 f), so three passes per octave (step 2^(1/3) for x2, x4, x8). Python's `round` (banker's
rounding on .5), as the original.

Decisions:
- K is clamped to at least 1 (spec §3.3), so every factor 1 < f <= 8 is valid. The original divides by zero
  for f < 2^(1/6) ≈ 1.1225; with the clamp such a factor is one pass of step f, a step the head was not
  trained for (trained 2^(1/3) ≈ 1.26: `step_mismatch` says by how much, the service turns it into a
  warning above STEP_WARNING).
- Output size ⌊f·h⌋ x ⌊f·w⌋ (SinGAN's crop) with a 1e-9 tolerance before the floor, so float error does not
  lose a row (2.3 * 100 = 229.99999999999997 in floats).
- Pass sizes follow SinGAN's ceil chain (each pass is `imresize` by `step`: ⌈size·step⌉); the last pass is
  raised to the output size if float error ever left it one short, so the top-left crop always fits.
"""

from __future__ import annotations

import math
from typing import Literal

SR_FACTOR_MIN = 1.0  # exclusive: the factor must be larger than this
SR_FACTOR_MAX = 8.0  # inclusive (spec §5.3); x8 is 9 passes
SR_FACTOR_DEFAULT = 4.0  # SinGAN's --sr_factor default
PASSES_PER_OCTAVE = 3  # SinGAN: base ratio 2^(-1/3)
MAX_OUTPUT_PIXELS = 4_194_304  # 2048², the service's default cap (spec §5.4); callers may pass a lower one
MAX_OUTPUT_SIDE = 4096  # longest side of an output
SRMode = Literal["generation", "retarget", "animation"]
SR_MODES: tuple[SRMode, ...] = ("generation", "retarget", "animation")  # modes whose samples show the scene
STEP_WARNING = 0.05  # |ln(step / trained step)| above this: the head runs a step it was not trained for
_FLOOR_TOLERANCE = 1e-9


def sr_passes(factor: float) -> int:
    """K = max(1, round(3·log2 f)): the number of head passes for `factor`."""
    _check_factor(factor)
    return max(1, round(PASSES_PER_OCTAVE * math.log2(factor)))


def sr_schedule(factor: float) -> tuple[int, float, float]:
    """(K, step, r0) for `factor`: K passes of upsampling by step = f^(1/K); r0 = 1/step = f^(-1/K)."""
    passes = sr_passes(factor)
    step = factor ** (1.0 / passes)
    return passes, step, factor ** (-1.0 / passes)


def sr_output_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """(⌊f·h⌋, ⌊f·w⌋): the size `super_resolve` returns for an h x w start image."""
    _check_factor(factor)
    return (
        math.floor(factor * height + _FLOOR_TOLERANCE),
        math.floor(factor * width + _FLOOR_TOLERANCE),
    )


def sr_pass_sizes(height: int, width: int, factor: float) -> list[tuple[int, int]]:
    """(H_j, W_j) of every pass j = 1..K before the final crop: SinGAN's chain ⌈size·step⌉.

    167x250 at x4: 211x315, 266x397, 336x501, 424x632, 535x797, 675x1005 (then cropped to 668x1000)."""
    passes, step, _ = sr_schedule(factor)
    sizes = []
    h, w = height, width
    for _ in range(passes):
        h, w = math.ceil(h * step), math.ceil(w * step)
        sizes.append((h, w))
    target = sr_output_size(height, width, factor)
    sizes[-1] = (max(sizes[-1][0], target[0]), max(sizes[-1][1], target[1]))
    return sizes


def step_mismatch(factor: float, sr_train: float) -> float:
    """|ln(step / trained step)|: how far the step of `factor` is from the one the head learned."""
    _, step, _ = sr_schedule(factor)
    _, trained_step, _ = sr_schedule(sr_train)
    return abs(math.log(step / trained_step))


def sr_max_factor(height: int, width: int, max_output_pixels: int = MAX_OUTPUT_PIXELS) -> float:
    """The largest factor (two decimals, rounded down, at most SR_FACTOR_MAX) whose output fits the caps."""
    by_pixels = math.sqrt(max_output_pixels / (height * width))
    by_side = MAX_OUTPUT_SIDE / max(height, width)
    return min(math.floor(100 * min(by_pixels, by_side)) / 100, SR_FACTOR_MAX)


def sr_request_problems(
    height: int, width: int, factor: float, max_output_pixels: int = MAX_OUTPUT_PIXELS
) -> list[str]:
    """Why enlarging an h x w image by `factor` is refused; empty when it is allowed."""
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not math.isfinite(factor):
        return [f"factor must be a finite number, not {factor!r}"]
    if not SR_FACTOR_MIN < factor <= SR_FACTOR_MAX:
        return [f"factor must be larger than {SR_FACTOR_MIN:g} and at most {SR_FACTOR_MAX:g}, not {factor:g}"]
    out_h, out_w = sr_output_size(height, width, factor)
    if out_h * out_w > max_output_pixels or max(out_h, out_w) > MAX_OUTPUT_SIDE:
        return [
            f"output {out_w}x{out_h} is over the limit ({max_output_pixels:,} pixels, {MAX_OUTPUT_SIDE} px "
            f"a side); the largest factor for this {width}x{height} image is "
            f"{sr_max_factor(height, width, max_output_pixels):g}"
        ]
    return []


def head_activation_bytes(rows: int, width: int, channels: int, batch: int = 1) -> int:
    """Bytes of the SR head's activations (fp32, no autograd) for `rows` output rows of `width`: four
    feature maps of `channels` with the 5-conv halo. Two are alive at once in principle (a conv's input
    and output); the CPU convolutions' reordered copies make it about four (docs/superres.md)."""
    halo = 10
    return 4 * 4 * channels * (rows + halo) * (width + halo) * batch


def head_band_rows(height: int, width: int, channels: int, batch: int, memory_budget: int) -> int:
    """Output rows per band so the head's activations stay within `memory_budget` bytes (at least 1)."""
    per_row = head_activation_bytes(1, width, channels, batch) - head_activation_bytes(
        0, width, channels, batch
    )
    fitting = memory_budget // per_row - (head_activation_bytes(0, width, channels, batch) // per_row)
    return max(1, min(height, fitting))


def _check_factor(factor: float) -> None:
    if not (math.isfinite(factor) and SR_FACTOR_MIN < factor <= SR_FACTOR_MAX):
        raise ValueError(
            f"factor must be larger than {SR_FACTOR_MIN:g} and at most {SR_FACTOR_MAX:g}, not {factor}"
        )
