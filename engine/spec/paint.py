"""Paint-to-image's request rules (engine/paint.py does the work): which models can paint, the stages a
painting may enter at, how many draws one call makes, and the palette size of `quantize`."""

from __future__ import annotations

from engine.spec.config import Mode

# Models whose head and first body learned to read the photo itself (stage 0 reconstructs from the image, and
# a painting enters there, engine/paint.py) and whose samples show its texture. Not animation: its stage-0
# reconstruction input is noise, so nothing of it ever read an image. Not harmonization or editing: they
# learned to restyle a pasted object.
PAINT_MODES: tuple[Mode, ...] = ("generation", "retarget")
PAINT_STAGE_MIN = 1  # stage 0 has no coarser output for the painting to stand in for
PAINT_STAGE_DEFAULT = 1
PAINT_MAX_DRAWS = 16  # n of one call: one batch through the generator
PALETTE_SIZE = 5  # SinGAN's k-means clusters for quantization
PAINT_NOISE = 0.5  # std of the noise added to the painting where it enters (engine/paint.py)
PAINT_NOISE_RANGE = (0.0, 2.0)
