"""The engine's request rules in plain Python: no torch, no numpy, no Pillow.

What a request may ask for and what the engine will make of it, in the one place the engine itself reads
them from:

- `config`: the words (modes, presets, composites), the bounds of a training config, `TrainConfig` with the
  paper's defaults and the mode and preset overrides, and `request_config` (a request's fields -> config);
- `geometry`: the pyramid's stage sizes and `check_image_size` ("will this image train?");
- `srmath`: SinGAN's super-resolution schedule, output sizes and request limits;
- `paint`: which models can paint, the stages, draws and palette size of paint-to-image;
- `srconfig`: the SR head's training config and presets (`SRConfig`), and the head preset of a model's.

The service's core imports these (and nothing else of the engine), so the API refuses exactly what a worker
would fail on, without loading torch. `import engine.spec` stays light because `engine/__init__.py` imports
its torch parts only when first used; the import contracts in pyproject.toml and
tests/engine/test_spec_imports.py keep it so.
"""

from engine.spec.config import (
    COMPOSITES,
    DEFAULT_COMPOSITE,
    IMAGE_SIZE_RANGE,
    ITERS_PER_STAGE_RANGE,
    MODES,
    PRESETS,
    REQUEST_FIELDS,
    TRAIN_STAGES_RANGE,
    Composite,
    Mode,
    Preset,
    TrainConfig,
    request_config,
)
from engine.spec.geometry import check_image_size, stage_sizes
from engine.spec.paint import (
    PAINT_MAX_DRAWS,
    PAINT_MODES,
    PAINT_NOISE,
    PAINT_NOISE_RANGE,
    PAINT_STAGE_DEFAULT,
    PAINT_STAGE_MIN,
    PALETTE_SIZE,
)
from engine.spec.srconfig import SR_ITERATIONS_RANGE, SR_PRESETS, SRConfig, SRPreset, head_preset
from engine.spec.srmath import (
    MAX_OUTPUT_PIXELS,
    MAX_OUTPUT_SIDE,
    SR_FACTOR_DEFAULT,
    SR_FACTOR_MAX,
    SR_FACTOR_MIN,
    SR_MODES,
    SRMode,
    sr_max_factor,
    sr_output_size,
    sr_request_problems,
)

__all__ = [
    "COMPOSITES",
    "DEFAULT_COMPOSITE",
    "IMAGE_SIZE_RANGE",
    "ITERS_PER_STAGE_RANGE",
    "MAX_OUTPUT_PIXELS",
    "MAX_OUTPUT_SIDE",
    "MODES",
    "PAINT_MAX_DRAWS",
    "PAINT_MODES",
    "PAINT_NOISE",
    "PAINT_NOISE_RANGE",
    "PAINT_STAGE_DEFAULT",
    "PAINT_STAGE_MIN",
    "PALETTE_SIZE",
    "PRESETS",
    "REQUEST_FIELDS",
    "SR_FACTOR_DEFAULT",
    "SR_FACTOR_MAX",
    "SR_FACTOR_MIN",
    "SR_ITERATIONS_RANGE",
    "SR_MODES",
    "SR_PRESETS",
    "TRAIN_STAGES_RANGE",
    "Composite",
    "Mode",
    "Preset",
    "SRConfig",
    "SRMode",
    "SRPreset",
    "TrainConfig",
    "check_image_size",
    "head_preset",
    "request_config",
    "sr_max_factor",
    "sr_output_size",
    "sr_request_problems",
    "stage_sizes",
]
