# TEMPORARY: the engine words core/vocabulary.py wrote again before engine.spec.
from __future__ import annotations

from typing import Final, Literal

# --- the engine's words (engine/config.py, engine/srmath.py) -------------------------------------------------
Mode = Literal["generation", "retarget", "animation", "harmonization", "editing"]
MODES: Final[tuple[Mode, ...]] = ("generation", "retarget", "animation", "harmonization", "editing")
Preset = Literal["paper", "quick"]
PRESETS: Final[tuple[Preset, ...]] = ("paper", "quick")
Composite = Literal["detail", "render"]  # how a harmonization is blended into the naive image
COMPOSITES: Final[tuple[Composite, ...]] = ("detail", "render")
DEFAULT_COMPOSITE: Final[Composite] = "detail"
TRAIN_STAGES_RANGE: Final = (2, 12)
ITERS_PER_STAGE_RANGE: Final = (1, 20000)
IMAGE_SIZE_RANGE: Final = (16, 1024)  # min_size and max_size, px
REQUEST_FIELDS: Final = ("train_stages", "iters_per_stage", "lr_scale", "max_size", "min_size")
SR_FACTOR_MIN: Final = 1.0
SR_FACTOR_MAX: Final = 8.0
SR_FACTOR_DEFAULT: Final = 4.0
SR_MAX_OUTPUT_SIDE: Final = 4096
SR_MAX_OUTPUT_PIXELS: Final = 4_194_304
SR_MODES: Final[tuple[Mode, ...]] = ("generation", "retarget", "animation")
