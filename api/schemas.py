"""Request and response schemas, named by role and kept apart from the tables."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.models import Job, JobEvent, JobState, Model, Sample
from core.storage import Storage, job_object_key

T = TypeVar("T")

Mode = Literal["generation", "retarget", "animation", "harmonization", "editing"]
Preset = Literal["paper", "quick"]
EventName = Literal[
    "model.succeeded", "model.failed", "model.canceled", "job.succeeded", "job.failed", "job.canceled"
]


class ModelCreate(BaseModel):
    """Training parameters of `POST /v1/models` (multipart form fields next to the `image` file).
    Unset numbers take the preset's value; the worker resolves them into the engine's config."""

    # "ignore", not "forbid": the form also carries the `image` file; the route refuses unknown fields itself.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "preset": "quick",
                    "mode": "generation",
                    "seed": 7,
                    "webhook_url": "https://example.com/hook",
                }
            ]
        },
    )

    preset: Preset = Field(
        "paper", description="paper: published settings (GPU); quick: a CPU run of minutes"
    )
    mode: Mode = Field("generation", description="what the model is trained for")
    train_stages: int | None = Field(None, ge=2, le=12, description="pyramid stages")
    iters_per_stage: int | None = Field(None, ge=1, le=10000, description="optimisation steps per stage")
    lr_scale: float | None = Field(None, gt=0, le=1, description="learning-rate factor of lower stages")
    max_size: int | None = Field(None, ge=16, le=1024, description="longer side of the finest stage, px")
    min_size: int | None = Field(None, ge=16, le=1024, description="shorter side of the coarsest stage, px")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed; drawn for you when unset")
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

    @model_validator(mode="after")
    def _sizes_in_order(self) -> ModelCreate:
        # caught here so the client gets a 422 now instead of a job that fails in the worker
        if self.min_size is not None and self.max_size is not None and self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        return self

    def training_params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"webhook_url", "webhook_events"}, exclude_none=True)


class SampleRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"n": 4, "seed": 1, "scale_h": 1.0, "scale_w": 1.5, "start_stage": 0}]
        },
    )

    n: int = Field(4, ge=1, le=32, description="how many images")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed; drawn for you when unset")
    scale_h: float = Field(1.0, ge=0.5, le=2.0, description="output height relative to the training image")
    scale_w: float = Field(1.0, ge=0.5, le=2.0, description="output width relative to the training image")
    start_stage: int = Field(
        0, ge=0, le=11, description="stages below this reuse the training image's layout"
    )


class HarmonizationCreate(BaseModel):
    """Fields of `POST /v1/models/{id}/harmonizations` (multipart, next to the `naive` and `mask` files)."""

    model_config = ConfigDict(
        extra="ignore",  # the form also carries the two files; the route refuses unknown fields itself
        json_schema_extra={"examples": [{"stage": 0, "fine_tune": True, "fine_tune_iters": 50, "seed": 3}]},
    )

    stage: int = Field(
        0, ge=0, le=11, description="injection stage: 0 (coarsest) harmonizes most; higher keeps more detail"
    )
    fine_tune: bool = Field(False, description="first fine-tune the model on the naive image (slower)")
    fine_tune_iters: int | None = Field(
        None, ge=1, le=5000, description="fine-tuning iterations; default 500 (paper preset), 50 (quick)"
    )
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed; drawn for you when unset")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(None, description="pass as `after` for the next page; null on the last")


class ProgressRead(BaseModel):
    stage: int
    num_stages: int
    iteration: int
    iters_per_stage: int
    percent: float
    elapsed_s: float | None = None
    eta_s: float | None = None
    losses: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def of(cls, progress: dict[str, Any] | None) -> ProgressRead | None:
        return cls.model_validate(progress) if progress else None


def _duration(started: dt.datetime | None, finished: dt.datetime | None) -> float | None:
    return round((finished - started).total_seconds(), 3) if started and finished else None


class ImageInfo(BaseModel):
    width: int
    height: int


_EXAMPLE_TIMES = {
    "created_at": "2026-11-25T09:00:00Z",
    "started_at": "2026-11-25T09:00:01Z",
    "finished_at": None,
}


MODEL_EXAMPLE: dict[str, Any] = {
    "id": "mdl_0193a1b2c3d4e5f60718293a4b5c",
    "object": "model",
    "state": "running",
    "params": {"preset": "quick", "mode": "generation", "seed": 7},
    "train_config": None,
    "image": {"width": 250, "height": 188},
    "progress": {
        "stage": 2,
        "num_stages": 5,
        "iteration": 40,
        "iters_per_stage": 150,
        "percent": 48.5,
        "elapsed_s": 57.1,
        "eta_s": 61.0,
        "losses": {"critic": -0.4},
    },
    "error": None,
    "cancel_requested": False,
    "train_job_id": "job_0193a1b2c3d4e5f60718293a4b5d",
    "webhook_url": "https://example.com/hook",
    "webhook_events": ["model.succeeded", "model.failed"],
    **_EXAMPLE_TIMES,
    "duration_s": None,
    "links": {"self": "/v1/models/mdl_0193a1b2c3d4e5f60718293a4b5c"},
}


class ModelRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [MODEL_EXAMPLE]})

    id: str
    object: Literal["model"] = "model"
    state: JobState
    params: dict[str, Any] = Field(description="the training parameters as requested")
    train_config: dict[str, Any] | None = Field(None, description="the engine config the worker resolved")
    image: ImageInfo
    progress: ProgressRead | None
    error: str | None
    cancel_requested: bool
    train_job_id: str | None
    webhook_url: str | None
    webhook_events: list[str]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: float | None
    links: dict[str, str]

    @classmethod
    def of(cls, model: Model) -> ModelRead:
        job = model.train_job
        base = f"/v1/models/{model.id}"
        links = {"self": base, "samples": f"{base}/samples", "cancel": f"{base}/cancel"}
        if job:
            links["job"] = f"/v1/jobs/{job.id}"
        return cls(
            id=model.id,
            state=JobState(job.state) if job else JobState.FAILED,
            params=model.params,
            train_config=model.train_config,
            image=ImageInfo(width=model.image_width, height=model.image_height),
            progress=ProgressRead.of(job.progress if job else None),
            error=job.error if job else "training job missing",
            cancel_requested=bool(job and job.cancel_requested),
            train_job_id=job.id if job else None,
            webhook_url=model.webhook_url,
            webhook_events=list(model.webhook_events or []),
            created_at=model.created_at,
            started_at=job.started_at if job else None,
            finished_at=job.finished_at if job else None,
            duration_s=_duration(job.started_at, job.finished_at) if job else None,
            links=links,
        )


class SampleRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "smp_0193a1b2c3d4e5f60718293a4b5e",
                    "model_id": "mdl_0193a1b2c3d4e5f60718293a4b5c",
                    "job_id": "job_0193a1b2c3d4e5f60718293a4b5f",
                    "width": 375,
                    "height": 188,
                    "size_bytes": 98765,
                    "is_preview": False,
                    "created_at": "2026-11-25T09:05:00Z",
                    "url": "https://s3.example.com/consingan/models/mdl_.../samples/smp_....png?X-Amz-Signature=...",
                }
            ]
        }
    )

    id: str
    model_id: str
    job_id: str
    width: int
    height: int
    size_bytes: int
    is_preview: bool = Field(description="stored automatically at the end of training")
    created_at: dt.datetime
    url: str = Field(description="download URL: presigned (S3, expires) or this API's content route")

    @classmethod
    def of(cls, sample: Sample, storage: Storage, base_url: str) -> SampleRead:
        url = storage.presigned_url(sample.key) or (
            f"{base_url.rstrip('/')}/v1/models/{sample.model_id}/samples/{sample.id}/content"
        )
        return cls(
            id=sample.id,
            model_id=sample.model_id,
            job_id=sample.job_id,
            width=sample.width,
            height=sample.height,
            size_bytes=sample.size_bytes,
            is_preview=sample.is_preview,
            created_at=sample.created_at,
            url=url,
        )


class HarmonizationResultRead(BaseModel):
    """A succeeded harmonize job's outputs."""

    url: str = Field(description="the composite, PNG at the naive image's size: presigned (S3) or API route")
    checkpoint_url: str | None = Field(
        None, description="the fine-tuned model (safetensors), when the job fine-tuned"
    )

    @classmethod
    def of(cls, job: Job, storage: Storage, base_url: str) -> HarmonizationResultRead:
        """The keys follow from the ids; the job's `succeeded` row is written only after its objects."""
        route = f"{base_url.rstrip('/')}/v1/jobs/{job.id}"

        def url(name: str, path: str) -> str:
            return storage.presigned_url(job_object_key(job.model_id, job.id, name)) or f"{route}/{path}"

        tuned = bool(job.params.get("fine_tune"))
        return cls(
            url=url("result.png", "result"),
            checkpoint_url=url("checkpoint.safetensors", "checkpoint") if tuned else None,
        )


class JobRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "job_0193a1b2c3d4e5f60718293a4b5f",
                    "object": "job",
                    "kind": "sample",
                    "state": "succeeded",
                    "model_id": "mdl_0193a1b2c3d4e5f60718293a4b5c",
                    "params": {"n": 1, "seed": 1, "scale_h": 1.0, "scale_w": 1.5, "start_stage": 0},
                    "progress": None,
                    "error": None,
                    "attempts": 1,
                    "cancel_requested": False,
                    **_EXAMPLE_TIMES,
                    "finished_at": "2026-11-25T09:00:03Z",
                    "duration_s": 2.1,
                    "samples": [],
                    "links": {"self": "/v1/jobs/job_0193a1b2c3d4e5f60718293a4b5f"},
                }
            ]
        }
    )

    id: str
    object: Literal["job"] = "job"
    kind: str
    state: JobState
    model_id: str
    params: dict[str, Any]
    progress: ProgressRead | None
    error: str | None
    attempts: int
    cancel_requested: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_s: float | None
    samples: list[SampleRead] | None = Field(None, description="the job's images once it succeeded")
    result: HarmonizationResultRead | None = Field(
        None, description="a harmonize job's composite (and fine-tuned checkpoint) once it succeeded"
    )
    links: dict[str, str]

    @classmethod
    def of(
        cls,
        job: Job,
        samples: list[SampleRead] | None = None,
        result: HarmonizationResultRead | None = None,
    ) -> JobRead:
        base = f"/v1/jobs/{job.id}"
        return cls(
            id=job.id,
            kind=job.kind,
            state=JobState(job.state),
            model_id=job.model_id,
            params=job.params,
            progress=ProgressRead.of(job.progress),
            error=job.error,
            attempts=job.attempts,
            cancel_requested=job.cancel_requested,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_s=_duration(job.started_at, job.finished_at),
            samples=samples,
            result=result,
            links={"self": base, "events": f"{base}/events", "model": f"/v1/models/{job.model_id}"},
        )


class JobEventRead(BaseModel):
    id: int
    type: str
    message: str
    data: dict[str, Any] | None
    created_at: dt.datetime

    @classmethod
    def of(cls, event: JobEvent) -> JobEventRead:
        return cls(
            id=event.id, type=event.type, message=event.message, data=event.data, created_at=event.created_at
        )


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
