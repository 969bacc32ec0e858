"""Request and response schemas: data shapes only, named by role and kept apart from the tables.

Bounds come from `core.vocabulary` (the engine's own for training). Building these from rows and URLs is
`api/render.py`; examples are `api/examples.py`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, get_args

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from api import examples
from core import vocabulary as v
from core.models import JobEventType, JobKind, JobState

T = TypeVar("T")

# A file part of a multipart form. `format: binary` is what client generators turn into a file argument;
# FastAPI's own `contentMediaType` alone makes them drop the part (openapi-python-client, openapi-zod-client).
FilePart = Annotated[UploadFile, WithJsonSchema({"type": "string", "format": "binary"})]

EventName = Literal[
    "model.succeeded", "model.failed", "model.canceled", "job.succeeded", "job.failed", "job.canceled"
]
Seed = Field(None, ge=0, le=v.SEED_MAX, description="random seed; drawn for you when unset")


class TrainingShape(BaseModel):
    """The fields that decide a training's pyramid: shared by `POST /v1/models` and `GET /v1/pyramid`.
    Unset numbers take the preset's value."""

    preset: v.Preset = Field(
        "paper", description="; ".join(f"{name}: {text}" for name, text in v.PRESET_DESCRIPTIONS.items())
    )
    mode: v.Mode = Field("generation", description="what the model is trained for")
    train_stages: int | None = Field(
        None, ge=v.TRAIN_STAGES_RANGE[0], le=v.TRAIN_STAGES_RANGE[1], description="pyramid stages"
    )
    iters_per_stage: int | None = Field(
        None,
        ge=v.ITERS_PER_STAGE_RANGE[0],
        le=v.ITERS_PER_STAGE_RANGE[1],
        description="optimisation steps per stage",
    )
    max_size: int | None = Field(
        None,
        ge=v.IMAGE_SIZE_RANGE[0],
        le=v.IMAGE_SIZE_RANGE[1],
        description="longer side of the finest stage, px",
    )
    min_size: int | None = Field(
        None,
        ge=v.IMAGE_SIZE_RANGE[0],
        le=v.IMAGE_SIZE_RANGE[1],
        description="shorter side of the coarsest stage, px",
    )

    @model_validator(mode="after")
    def _sizes_in_order(self) -> Self:
        # caught here so the client gets a 422 now instead of a job that fails in the worker
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        return self


class ModelCreate(TrainingShape):
    """The multipart form of `POST /v1/models`: the `image` file and the training parameters.
    Unset numbers take the preset's value; the worker resolves them into the engine's config."""

    # A misspelt field (`iter_per_stage`) is a 422, never a training with the preset's value.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.MODEL_CREATE]})

    image: FilePart = Field(description="PNG, JPEG or WebP; the scene to learn")
    lr_scale: float | None = Field(None, gt=0, le=1, description="learning-rate factor of lower stages")
    seed: int | None = Seed
    sr_factor: float | None = Field(
        None,
        gt=v.SR_FACTOR_MIN,
        le=v.SR_FACTOR_MAX,
        description="also train a super-resolution head for this factor (generation, retarget and "
        "animation models): the model succeeds when its pyramid is trained, then a `train_sr_head` job of "
        "its own trains the head (`sr_head_training` on the model; about one more stage of training); "
        "x2, x4 and x8 share one step",
    )
    sr_iters: int | None = Field(
        None,
        ge=v.SR_HEAD_ITERS_RANGE[0],
        le=v.SR_HEAD_ITERS_RANGE[1],
        description="the head's training iterations (default: 2000 for preset=paper, 600 for quick)",
    )
    webhook_url: str | None = Field(None, max_length=2000, description="receives signed Standard Webhooks")
    webhook_events: list[EventName] = Field(
        default_factory=lambda: list(get_args(EventName)),
        description="events to send (repeat the field or comma-separate)",
    )

    @field_validator("webhook_events", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        return value

    def training_params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"image", "webhook_url", "webhook_events"}, exclude_none=True)


StartStage = Field(
    0, ge=0, le=v.MAX_STAGE_INDEX, description="stages below this reuse the training image's layout"
)


class SampleRequest(BaseModel):
    """JSON body of `POST /v1/models/{id}/samples`. Strict: `true` is not 1 and `"4"` is not 4 (form models
    stay lax: every form field arrives as a string)."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [examples.SAMPLE_REQUEST]}
    )

    n: int = Field(4, ge=1, le=v.SAMPLES_PER_JOB_MAX, description="how many images")
    seed: int | None = Seed
    scale_h: float = Field(
        1.0,
        ge=v.SAMPLE_SCALE_RANGE[0],
        le=v.SAMPLE_SCALE_RANGE[1],
        description="output height relative to the training image",
    )
    scale_w: float = Field(
        1.0,
        ge=v.SAMPLE_SCALE_RANGE[0],
        le=v.SAMPLE_SCALE_RANGE[1],
        description="output width relative to the training image",
    )
    start_stage: int = StartStage


class HarmonizationCreate(BaseModel):
    """The multipart form of `POST /v1/models/{id}/harmonizations`: the `naive` and `mask` files and the
    fields below."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.HARMONIZATION_CREATE]})

    naive: FilePart = Field(description="the cut-and-paste: the scene with the object pasted in")
    mask: FilePart = Field(description="same size as `naive`; white on black where the object is")
    stage: int = Field(
        0,
        ge=0,
        le=v.MAX_STAGE_INDEX,
        description="injection stage: 0 (coarsest) harmonizes most; higher keeps more detail",
    )
    composite: v.Composite = Field(
        v.DEFAULT_COMPOSITE,
        description="detail: keep the pasted object's own fine detail at the naive image's resolution and "
        "take colour and texture from the model; render: the model's rendering, upsampled (the original's)",
    )
    fine_tune: bool = Field(False, description="first fine-tune the model on the naive image (slower)")
    fine_tune_iters: int | None = Field(
        None,
        ge=v.FINE_TUNE_ITERS_RANGE[0],
        le=v.FINE_TUNE_ITERS_RANGE[1],
        description="fine-tuning iterations; default "
        + ", ".join(f"{n} ({preset} preset)" for preset, n in v.FINE_TUNE_ITERS_DEFAULT.items()),
    )
    seed: int | None = Seed

    def job_params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"naive", "mask"})


class PaintingCreate(BaseModel):
    """The multipart form of `POST /v1/models/{id}/paintings`: the `painting` file and the fields below."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.PAINTING_CREATE]})

    painting: FilePart = Field(
        description="a rough painting or clip-art of the scene, in the training image's aspect ratio and "
        "roughly its colours (any size: it is resized to the model's stages)"
    )
    stage: int = Field(
        v.PAINT_STAGE_DEFAULT,
        ge=v.PAINT_STAGE_MIN,
        le=v.MAX_STAGE_INDEX,
        description="injection stage, 1 .. the model's last: low stages redraw more of the painting with the "
        "photo's textures, high stages keep more of its flat colours",
    )
    quantize: bool = Field(
        False,
        description=f"first snap the painting's colours to the training image's {v.PAINT_PALETTE_SIZE} "
        "k-means colours (SinGAN's quantization)",
    )
    n: int = Field(1, ge=1, le=v.PAINT_DRAWS_MAX, description="how many images (independent noise draws)")
    seed: int | None = Seed

    def job_params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"painting"})


class AnimationCreate(BaseModel):
    """`POST /v1/models/{id}/animations`: a random walk around the training image (the paper's §4 defaults)."""

    model_config = ConfigDict(  # strict, as SampleRequest: a JSON body
        extra="forbid", strict=True, json_schema_extra={"examples": [examples.ANIMATION_CREATE]}
    )

    frames: int = Field(
        100,
        ge=v.ANIMATION_FRAMES_RANGE[0],
        le=v.ANIMATION_FRAMES_RANGE[1],
        description=f"frame count; frames x the model's pixels must stay under {v.ANIMATION_MAX_FRAME_PIXELS:,}",
    )
    fps: float = Field(
        10.0, ge=v.ANIMATION_FPS_RANGE[0], le=v.ANIMATION_FPS_RANGE[1], description="frames per second"
    )
    alpha: float = Field(0.1, ge=0, le=1, description="pull of the walk back to the training image")
    beta: float = Field(0.9, ge=0, le=1, description="momentum of the walk (0.8-0.95 in the paper)")
    start_stage: int = StartStage
    format: v.AnimationFormat = Field(
        "gif",
        description="gif (256 colours a frame), webp (lossless) or mp4 (H.264, yuv420p; an odd side is "
        "padded by one pixel repeating the last row/column)",
    )
    seed: int | None = Seed


class SRHeadCreate(BaseModel):
    """`POST /v1/models/{id}/sr-head`: train a super-resolution head for a model trained earlier."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [examples.SR_HEAD_CREATE]}
    )

    factor: float = Field(
        v.SR_FACTOR_DEFAULT,
        gt=v.SR_FACTOR_MIN,
        le=v.SR_FACTOR_MAX,
        description="the factor the head learns the step of (SinGAN: x4; x2 and x8 share its step)",
    )
    iterations: int | None = Field(
        None,
        ge=v.SR_HEAD_ITERS_RANGE[0],
        le=v.SR_HEAD_ITERS_RANGE[1],
        description="training iterations (default: 2000 for preset=paper models, 600 for quick)",
    )
    replace: bool = Field(False, description="train a new head in place of the model's current one")
    seed: int | None = Seed


class SampleSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_id: str = Field(max_length=40, description="one of the model's samples (or previews)")


class SuperResolutionCreate(BaseModel):
    """`POST /v1/models/{id}/super-resolutions`: enlarge the model's training image (SinGAN's SR) or one of
    its samples by `factor`, with invented but plausible detail."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [examples.SUPER_RESOLUTION_CREATE]}
    )

    factor: float | None = Field(
        None,
        gt=v.SR_FACTOR_MIN,
        le=v.SR_FACTOR_MAX,
        description="how much larger, per side (default: the head's trained factor); the output "
        "⌊f·h⌋ x ⌊f·w⌋ is capped: a 422 output-too-large says the largest factor for this model",
    )
    source: v.SRSource | SampleSource = Field(
        "training_image", description='"training_image" (the model\'s top-stage image), or {"sample_id": ...}'
    )
    n: int = Field(1, ge=1, le=v.SR_VARIANTS_MAX, description="independent noise draws of the enlargement")
    noise_scale: float = Field(
        1.0,
        ge=v.SR_NOISE_SCALE_RANGE[0],
        le=v.SR_NOISE_SCALE_RANGE[1],
        description="times the head's noise amplitude: 0 gives one deterministic result",
    )
    seed: int | None = Seed

    def job_params(self) -> dict[str, Any]:
        sample_id = self.source.sample_id if isinstance(self.source, SampleSource) else None
        return {**self.model_dump(exclude={"source"}), "sample_id": sample_id}


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        None, description="opaque; pass it as `after` for the next page; null on the last page"
    )


class ProgressRead(BaseModel):
    stage: int
    num_stages: int
    iteration: int
    iters_per_stage: int
    percent: float
    elapsed_s: float | None = None
    eta_s: float | None = None
    losses: dict[str, float] = Field(default_factory=dict)


class ImageInfo(BaseModel):
    width: int
    height: int


class SRHeadRead(BaseModel):
    sr_train: float = Field(description="the factor it was trained for; its step serves every factor")
    passes: int = Field(description="head passes at that factor")
    noise_amp: float = Field(description="the noise amplitude it adds at each pass (noise_scale 1)")
    iterations: int
    max_factor: float = Field(description="the largest factor the service renders this model's image at")


class ModelCancel(BaseModel):
    """`POST /v1/models/{id}/cancel`'s optional JSON body."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"keep_trained_stages": True}]}
    )

    keep_trained_stages: bool = Field(
        False,
        description="stop the training and keep the stages finished so far: the model ends `succeeded` "
        "with them (a smaller model; its checkpoint is the last finished stage's). Only while the training "
        "runs and has finished a stage, else a 409 `nothing-to-keep` and nothing changes. false (or no "
        "body): the training is discarded (`canceled`)",
    )


class HeadTrainingRead(BaseModel):
    """The model's newest super-resolution head training (a `train_sr_head` job)."""

    job_id: str
    state: JobState
    factor: float | None = Field(None, description="the factor the head is trained for")
    progress: ProgressRead | None
    error: str | None


class ModelRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.MODEL]})

    id: str
    object: Literal["model"] = "model"
    state: JobState
    params: dict[str, Any] = Field(description="the training parameters as requested")
    train_config: dict[str, Any] | None = Field(None, description="the engine config the worker resolved")
    image: ImageInfo = Field(description="the uploaded image's size")
    input_url: str = Field(
        description="the uploaded image (PNG): presigned (S3, expires) or this API's `/input` route"
    )
    progress: ProgressRead | None
    queue_position: int | None = Field(
        None,
        description='queued only: how many queued jobs of its lane start before this one (0: next; 2: "2 jobs '
        "ahead of yours\"), in the lane's fair-share order (docs/events.md); it can grow when another owner "
        "with fewer unfinished jobs queues one; null unless queued",
        examples=[2],
    )
    error: str | None
    cancel_requested: bool
    train_job_id: str | None
    webhook_url: str | None
    webhook_events: list[EventName]
    sr_head: SRHeadRead | None = Field(None, description="the model's super-resolution head, when it has one")
    sr_head_training: HeadTrainingRead | None = Field(
        None,
        description="its newest head training, when one was asked for (`sr_factor` at upload queues one "
        "as soon as the model succeeded; `POST .../sr-head` too): state and progress of its own",
    )
    stages_planned: int | None = Field(None, description="pyramid stages the training was set to train")
    stages_trained: int | None = Field(
        None,
        description="stages finished: so far while training; of a succeeded model, those its checkpoint "
        "holds (fewer than planned when it was canceled with keep_trained_stages)",
    )
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: float | None
    links: dict[str, str]


class SampleRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.SAMPLE]})

    id: str
    model_id: str
    job_id: str
    width: int
    height: int
    size_bytes: int
    is_preview: bool = Field(description="stored automatically at the end of training")
    created_at: dt.datetime
    url: str = Field(description="download URL: presigned (S3, expires) or this API's content route")


class JobFileRead(BaseModel):
    name: str = Field(description="file name, e.g. result.png, animation.gif")
    media_type: str
    url: str = Field(description="presigned (S3, expires) or this API's download route")


class JobResultRead(BaseModel):
    """What a succeeded job produced besides samples: a harmonization's composite (and fine-tuned
    checkpoint), an animation."""

    url: str = Field(description="the main output: the composite PNG, or the animation")
    checkpoint_url: str | None = Field(
        None, description="the fine-tuned model (safetensors), when a harmonize job fine-tuned"
    )
    files: list[JobFileRead] = Field(default_factory=list, description="every output file")
    width: int | None = Field(None, description="output width, px (animations)")
    height: int | None = Field(None, description="output height, px (animations)")
    frames: int | None = Field(None, description="frame count (animations)")
    input_width: int | None = Field(
        None, description="the enlarged image's width before, px (super-resolution)"
    )
    input_height: int | None = Field(None, description="its height before, px (super-resolution)")
    factor: float | None = Field(None, description="the enlargement per side (super-resolution)")
    passes: int | None = Field(None, description="head passes K = round(3·log2 factor) (super-resolution)")
    step: float | None = Field(None, description="each pass's upsampling, factor^(1/K) (super-resolution)")
    noise_amp: float | None = Field(None, description="the noise amplitude of every pass (super-resolution)")
    warnings: list[str] = Field(default_factory=list, description="e.g. a step the head was not trained for")
    comparison_url: str | None = Field(
        None,
        description="the same input enlarged by plain bicubic interpolation to the same size, to compare "
        "against (super-resolution; `bicubic.png`, not among `files`)",
    )
    stage: int | None = Field(None, description="the stage the painting entered at (paint-to-image)")


class JobRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.SAMPLE_JOB]})

    id: str
    object: Literal["job"] = "job"
    kind: JobKind
    state: JobState
    model_id: str
    params: dict[str, Any]
    progress: ProgressRead | None
    queue_position: int | None = Field(
        None,
        description='queued only: how many queued jobs of its lane start before this one (0: next; 2: "2 jobs '
        "ahead of yours\"), in the lane's fair-share order (docs/events.md); it can grow when another owner "
        "with fewer unfinished jobs queues one; null unless queued",
        examples=[2],
    )
    error: str | None
    attempts: int
    cancel_requested: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: float | None
    samples: list[SampleRead] | None = Field(None, description="the job's images once it succeeded")
    result: JobResultRead | None = Field(
        None, description="a harmonize or animate job's files once it succeeded"
    )
    links: dict[str, str]


class JobEventLinks(BaseModel):
    preview: str | None = Field(
        None,
        description="a training's `stage_done`: an image the model drew after that stage (presigned, or this "
        "API's `/v1/models/{id}/stages/{k}/preview`); null on other events",
    )


class JobEventRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.STAGE_DONE_EVENT]})

    id: int
    type: JobEventType
    message: str
    data: dict[str, Any] | None = Field(
        description="stage_done: `stages_done`, `stage` and the `preview`'s size; progress: the numbers"
    )
    created_at: dt.datetime
    links: JobEventLinks = Field(default_factory=JobEventLinks)


class PyramidQuery(TrainingShape):
    """`GET /v1/pyramid`: an image's size and the training fields of `POST /v1/models`."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(ge=1, le=100_000, description="the image's width, px")
    height: int = Field(ge=1, le=100_000, description="the image's height, px")


class PyramidRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.PYRAMID]})

    image: ImageInfo = Field(description="the image as uploaded")
    top: ImageInfo = Field(description="what the model sees and draws at: the image fitted into max_size")
    stages: list[ImageInfo] = Field(description="every stage's size, coarsest first; the last is `top`")
    train_config: dict[str, Any] = Field(description="the engine config a training would resolve")


class IntRange(BaseModel):
    min: int
    max: int


class FloatRange(BaseModel):
    min: float
    max: float


class ModeRead(BaseModel):
    name: v.Mode
    description: str


class PresetRead(BaseModel):
    name: v.Preset
    description: str
    modes: dict[str, dict[str, Any]] = Field(
        description="per mode, the engine config this preset resolves to (before per-request overrides)"
    )
    fine_tune_iters: int = Field(description="a harmonization's default fine-tuning iterations")
    sr_head_iters: int = Field(
        description="a super-resolution head's default training iterations (`sr_factor` without `sr_iters`)"
    )


class LimitsRead(BaseModel):
    train_stages: IntRange
    iters_per_stage: IntRange
    image_size: IntRange = Field(description="bounds of max_size and min_size, px")
    samples_per_job: IntRange
    sample_scale: FloatRange = Field(description="scale_h and scale_w of a sample job")
    fine_tune_iters: IntRange
    animation_frames: IntRange
    animation_fps: FloatRange
    animation_max_frame_pixels: int = Field(description="frames x the model's pixels, at most")
    sr_factor: FloatRange = Field(description="super-resolution factors: larger than min, at most max")
    sr_variants: IntRange = Field(description="`n` of a super-resolution")
    sr_noise_scale: FloatRange
    sr_max_output_pixels: int = Field(description="a super-resolution's output width x height, at most")
    seed_max: int
    max_upload_bytes: int
    max_image_pixels: int
    max_image_side: int
    min_image_side: int


class VocabularyRead(BaseModel):
    """What a client may ask for: modes, presets (with the numbers they resolve to), choices and limits."""

    job_kinds: list[JobKind] = Field(description="the kinds of work this service runs")
    modes: list[ModeRead]
    presets: list[PresetRead]
    composites: list[v.Composite] = Field(description="how a harmonization is blended into the naive image")
    default_composite: v.Composite
    animation_formats: list[v.AnimationFormat]
    sr_modes: list[v.Mode] = Field(description="the modes whose models can get a super-resolution head")
    paint_modes: list[v.Mode] = Field(description="the modes whose models turn a painting into an image")
    limits: LimitsRead


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class ValidationIssue(BaseModel):
    """One invalid input of a 422: where it is and what is wrong with it."""

    loc: list[str | int] = Field(description='where: ["body", "seed"], ["query", "after"], ...')
    msg: str
    type: str | None = Field(None, description="pydantic's error type, e.g. missing, extra_forbidden")


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every 4xx and 5xx (`application/problem+json`). `type` is
    stable, `detail` says what went wrong and how to fix it; members not listed here may be added."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [examples.PROBLEM]})

    type: str = Field(description="https://consingan.dev/problems/<slug>; docs/api.md lists every slug")
    title: str
    status: int
    detail: str
    instance: str = Field(description="the request's path")
    errors: list[ValidationIssue] | None = Field(None, description="422: every invalid input")
    state: str | None = Field(None, description="409: the state the resource is in")
    limit: int | None = Field(None, description="429: your limit of unfinished jobs")
    max_bytes: int | None = Field(None, description="413: the largest upload accepted")


class EstimateQuery(PyramidQuery):
    """`GET /v1/estimate`: `GET /v1/pyramid`'s fields, and the head's of `POST /v1/models`."""

    sr_factor: float | None = Field(
        None, gt=v.SR_FACTOR_MIN, le=v.SR_FACTOR_MAX, description="a head is trained after the pyramid"
    )
    sr_iters: int | None = Field(
        None, ge=v.SR_HEAD_ITERS_RANGE[0], le=v.SR_HEAD_ITERS_RANGE[1], description="the head's iterations"
    )


class StageEstimate(BaseModel):
    stage: int = Field(description="0 is the coarsest")
    width: int
    height: int
    iterations: int
    seconds: float = Field(description="predicted, with the stage's snapshot and preview")


class HeadEstimate(BaseModel):
    iterations: int
    seconds: float


class EstimateRead(BaseModel):
    """How long a training would take on this service's workers (docs/estimates.md)."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ESTIMATE]})

    device: str = Field(description="the device kind the estimate is for: the one that trained last")
    basis: Literal["prior", "measured"] = Field(
        description="`measured`: from the paces this service's workers recorded; `prior`: none yet on this "
        "device, a built-in guess"
    )
    measurements: int = Field(description="recorded stage paces the fit used")
    stages: list[StageEstimate]
    sr_head: HeadEstimate | None = Field(description="the super-resolution head, when `sr_factor` is set")
    total_s: float = Field(
        description="seconds from the training's start to its end, queue wait not included"
    )
