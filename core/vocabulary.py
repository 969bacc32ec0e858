"""The service's words, in one place: modes, presets, limits, job result file names.

The engine's words (modes, presets, composites, the bounds of a training config, SinGAN's super-resolution
limits) are the engine's own, imported from its torch-free rules (`engine.spec`) and named here for the
service's modules (the API imports no engine). The rest are the service's own choices, tighter than the
engine's where a request must stay cheap.
"""

from __future__ import annotations

from typing import Final, Literal

# --- the engine's words: imported from engine.spec, never written again here ------------------------------
from engine.spec import (
    COMPOSITES,
    DEFAULT_COMPOSITE,
    IMAGE_SIZE_RANGE,
    ITERS_PER_STAGE_RANGE,
    MAX_OUTPUT_PIXELS,
    MAX_OUTPUT_SIDE,
    MODES,
    PRESETS,
    REQUEST_FIELDS,
    SR_FACTOR_DEFAULT,
    SR_FACTOR_MAX,
    SR_FACTOR_MIN,
    SR_MODES,
    TRAIN_STAGES_RANGE,
    Composite,
    Mode,
    Preset,
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
SR_HEAD_ITERS_RANGE: Final = (1, 20000)
SR_VARIANTS_MAX: Final = 4  # `n` of one request: independent noise draws of the same enlargement
SR_NOISE_SCALE_RANGE: Final = (0.0, 2.0)  # 0: deterministic; 1: the head's trained amplitude
SRSource = Literal["training_image"]

# --- a job's stored files (models/{model_id}/jobs/{job_id}/{name}) ------------------------------------------
NAIVE_FILE: Final = "naive.png"
MASK_FILE: Final = "mask.png"
RESULT_FILE: Final = "result.png"
CHECKPOINT_FILE: Final = "checkpoint.safetensors"
ANIMATION_FILES: Final = {fmt: f"animation.{fmt}" for fmt in ANIMATION_FORMATS}
SR_FILES: Final = tuple(f"super_resolution_{i}.png" for i in range(SR_VARIANTS_MAX))
JOB_FILE_NAMES: Final = frozenset(
    {NAIVE_FILE, MASK_FILE, RESULT_FILE, CHECKPOINT_FILE, *ANIMATION_FILES.values(), *SR_FILES}
)
# what each downloadable file is served as
MEDIA_TYPES: Final = {
    RESULT_FILE: "image/png",
    CHECKPOINT_FILE: "application/octet-stream",
    **{name: ANIMATION_MEDIA_TYPES[fmt] for fmt, name in ANIMATION_FILES.items()},
    **dict.fromkeys(SR_FILES, "image/png"),
}
