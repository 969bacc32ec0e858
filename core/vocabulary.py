"""The service's words, in one place: modes, presets, limits, job result file names.

The engine's words (modes, presets, composites, the bounds of a training config, SinGAN's super-resolution
limits) are the engine's own, imported from its torch-free rules (`engine.spec`) and named here for the
service's modules (the API imports no engine). The rest are the service's own choices, tighter than the
engine's where a request must stay cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, cast

# --- the engine's words: imported from engine.spec, never written again here ------------------------------
from engine.spec import (
    COMPOSITES,
    DEFAULT_COMPOSITE,
    IMAGE_SIZE_RANGE,
    ITERS_PER_STAGE_RANGE,
    MAX_OUTPUT_PIXELS,
    MAX_OUTPUT_SIDE,
    MODES,
    PAINT_MAX_DRAWS,
    PAINT_MODES,
    PAINT_STAGE_DEFAULT,
    PAINT_STAGE_MIN,
    PALETTE_SIZE,
    PRESETS,
    REQUEST_FIELDS,
    SR_FACTOR_DEFAULT,
    SR_FACTOR_MAX,
    SR_FACTOR_MIN,
    SR_ITERATIONS_RANGE,
    SR_MODES,
    TRAIN_STAGES_RANGE,
    Composite,
    Mode,
    Preset,
    SRConfig,
    head_preset,
)

# --- training (POST /v1/models) ----------------------------------------------------------------------------
PRESET_DESCRIPTIONS: Final[dict[Preset, str]] = {
    "paper": "the published settings (a GPU trains them in minutes, a CPU in hours)",
    "quick": "a small, rough model a CPU trains in minutes (64 px, 32 channels)",
}
MODE_DESCRIPTIONS: Final[dict[Mode, str]] = {
    "generation": "new random images of the scene",
    "retarget": "new images of the scene at other sizes and aspect ratios",
    "animation": "short animations of the scene",
    "harmonization": "paste an object into the scene and get it back in the scene's style",
    "editing": "edit a region of the image and let the model blend the edit in",
}
MAX_STAGE_INDEX: Final = TRAIN_STAGES_RANGE[1] - 1  # `stage`/`start_stage` of any model is below this + 1
SEED_MAX: Final = 2**31 - 1
# A training image is never used above max_size (<= 1024 px): a JPEG is decoded at 1/2, 1/4 or 1/8 of its size
# as long as its longer side stays at least this.
TRAINING_DECODE_SIDE: Final = IMAGE_SIZE_RANGE[1]

# --- sampling (POST /v1/models/{id}/samples) ---------------------------------------------------------------
SAMPLES_PER_JOB_MAX: Final = 32
SAMPLE_SCALE_RANGE: Final = (0.5, 2.0)  # output size relative to the training image, per axis
SAMPLE_BATCH: Final = 8  # images per generator call in the worker: bounds memory for large n at 2x scale

# --- harmonization (POST /v1/models/{id}/harmonizations) --------------------------------------------------
# About a tenth of a stage's training, as in the original's harmonization fine-tuning, and a tenth of the
# quick preset's 200 x 3 for a CPU model.
FINE_TUNE_ITERS_DEFAULT: Final[dict[Preset, int]] = {"paper": 500, "quick": 50}
FINE_TUNE_ITERS_RANGE: Final = (1, 5000)

# --- animation (POST /v1/models/{id}/animations) -----------------------------------------------------------
AnimationFormat = Literal["gif", "webp", "mp4"]
ANIMATION_FORMATS: Final[tuple[AnimationFormat, ...]] = ("gif", "webp", "mp4")
ANIMATION_MEDIA_TYPES: Final[dict[AnimationFormat, str]] = {
    "gif": "image/gif",
    "webp": "image/webp",
    "mp4": "video/mp4",  # H.264 in MP4, yuv420p, sides padded to even; encoded by the worker (PyAV)
}
ANIMATION_FRAMES_RANGE: Final = (2, 500)
ANIMATION_FPS_RANGE: Final = (1.0, 50.0)
# frames x pixels per frame: 100 frames of a 250 x 167 model is 4.2 M; a 1024-px model gets ~40 frames
ANIMATION_MAX_FRAME_PIXELS: Final = 40_000_000

# --- super-resolution (SR heads, POST /v1/models/{id}/super-resolutions) ------------------------------------
SR_MAX_OUTPUT_SIDE: Final = MAX_OUTPUT_SIDE
SR_MAX_OUTPUT_PIXELS: Final = MAX_OUTPUT_PIXELS  # 2048², the default of the setting max_sr_output_pixels
SR_HEAD_ITERS_RANGE: Final = SR_ITERATIONS_RANGE
# a head's training iterations by the model's preset: the engine's (engine.spec.SRConfig.preset)
SR_HEAD_ITERS_DEFAULT: Final[dict[Preset, int]] = {
    preset: SRConfig.preset(head_preset(preset)).iterations for preset in PRESETS
}
SR_VARIANTS_MAX: Final = 4  # `n` of one request: independent noise draws of the same enlargement
SR_NOISE_SCALE_RANGE: Final = (0.0, 2.0)  # 0: deterministic; 1: the head's trained amplitude
SRSource = Literal["training_image"]

# --- paint-to-image (POST /v1/models/{id}/paintings; engine/paint.py) -------------------------------------
# Interactive work: one generator pass from stage k up, like a sample (its lane is the interactive one).
# The models that can paint (PAINT_MODES), the stages (PAINT_STAGE_MIN ..) and the palette are the engine's.
PAINT_DRAWS_MAX: Final = min(8, PAINT_MAX_DRAWS)  # `n` of one request: independent noise draws
PAINT_PALETTE_SIZE: Final = PALETTE_SIZE  # k-means colours of `quantize`

# --- a job's stored files (models/{model_id}/jobs/{job_id}/{name}) ------------------------------------------
NAIVE_FILE: Final = "naive.png"
MASK_FILE: Final = "mask.png"
RESULT_FILE: Final = "result.png"
CHECKPOINT_FILE: Final = "checkpoint.safetensors"
ANIMATION_FILES: Final = {fmt: f"animation.{fmt}" for fmt in ANIMATION_FORMATS}
SR_FILES: Final = tuple(f"super_resolution_{i}.png" for i in range(SR_VARIANTS_MAX))
SR_COMPARISON_FILE: Final = "bicubic.png"  # an enlargement's input by plain bicubic, the same size
PAINTING_FILE: Final = "painting.png"  # a paint job's input, stored at submission
PAINT_FILES: Final = tuple(f"paint_{i}.png" for i in range(PAINT_DRAWS_MAX))
JOB_FILE_NAMES: Final = frozenset(
    {
        NAIVE_FILE,
        MASK_FILE,
        RESULT_FILE,
        CHECKPOINT_FILE,
        *ANIMATION_FILES.values(),
        *SR_FILES,
        SR_COMPARISON_FILE,
        PAINTING_FILE,
        *PAINT_FILES,
    }
)
# what each downloadable file is served as
MEDIA_TYPES: Final = {
    RESULT_FILE: "image/png",
    CHECKPOINT_FILE: "application/octet-stream",
    **{name: ANIMATION_MEDIA_TYPES[fmt] for fmt, name in ANIMATION_FILES.items()},
    **dict.fromkeys(SR_FILES, "image/png"),
    SR_COMPARISON_FILE: "image/png",
    **dict.fromkeys(PAINT_FILES, "image/png"),
}

# --- lanes: which Celery queue (and which worker) runs a job ----------------------------------------------
# Long work (minutes to hours) runs in the long lane, one fresh process per job; short requests run in the
# interactive lane, a warm worker that keeps models loaded. This is the one place that says which kind is
# where (docs/lanes.md). Kinds are the `JobKind` values, written as words: core.models is not imported here.
Lane = Literal["long", "interactive"]
LANES: Final[tuple[Lane, ...]] = ("long", "interactive")
KIND_LANES: Final[dict[str, Lane]] = {
    "train": "long",
    "train_sr_head": "long",
    "sample": "interactive",
    "super_resolve": "interactive",
    "animate": "interactive",
    "paint": "interactive",
    # "harmonize": its `fine_tune` field decides (below)
}
PARAM_DEPENDENT_LANE_KINDS: Final = frozenset({"harmonize"})


def as_lane(value: str) -> Lane:
    """A lane read back from storage (`jobs.lane`)."""
    if value not in LANES:
        raise ValueError(f"a job's lane is one of {LANES}, not {value!r}")
    return cast(Lane, value)


def lane_of(kind: str, params: Mapping[str, Any] | None) -> Lane:
    """The lane a job of `kind` with these params runs in. A harmonization with fine-tuning trains (long);
    without it is one generator pass (interactive). A kind not listed is long: safe, never a warm worker
    held for minutes."""
    if kind == "harmonize":
        return "long" if (params or {}).get("fine_tune") else "interactive"
    return KIND_LANES.get(kind, "long")
