"""Rows -> response schemas, with the URLs clients download from.

A download URL is presigned on S3 (the client fetches from storage directly) or, on local storage, a route
of this API (streamed, and it needs the API key).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from api.schemas import (
    FloatRange,
    HeadTrainingRead,
    ImageInfo,
    IntRange,
    JobEventLinks,
    JobEventRead,
    JobFileRead,
    JobRead,
    JobResultRead,
    LimitsRead,
    ModelRead,
    ModeRead,
    PresetRead,
    ProgressRead,
    PyramidRead,
    SampleRead,
    SRHeadRead,
    VocabularyRead,
)
from core import fair_share, service
from core import vocabulary as v
from core.kind_rules import model_max_sr_factor
from core.models import Job, JobEvent, JobEventType, JobKind, JobState, Model, Sample
from core.results import job_file_key, job_file_names
from core.settings import Settings
from core.storage import Storage, stage_preview_key
from core.training import Pyramid, resolve_training
from core.vocabulary import CHECKPOINT_FILE, MEDIA_TYPES, RESULT_FILE

# the harmonize routes that came before /files/{name}: their URLs stay what clients already use
FILE_ROUTES = {RESULT_FILE: "result", CHECKPOINT_FILE: "checkpoint"}


def _duration(started: dt.datetime | None, finished: dt.datetime | None) -> float | None:
    return round((finished - started).total_seconds(), 3) if started and finished else None


def progress_read(progress: dict[str, Any] | None) -> ProgressRead | None:
    return ProgressRead.model_validate(progress) if progress else None


def input_url(model: Model, storage: Storage, base_url: str) -> str:
    return storage.presigned_url(model.input_key) or f"{base_url.rstrip('/')}/v1/models/{model.id}/input"


def sr_head_read(model: Model, max_output_pixels: int) -> SRHeadRead | None:
    head = model.sr_head
    if not head:
        return None
    return SRHeadRead(
        sr_train=head["sr_train"],
        passes=head["passes"],
        noise_amp=head["noise_amp"],
        iterations=head["iterations"],
        max_factor=model_max_sr_factor(model, max_output_pixels),
    )


def head_training_read(model: Model) -> HeadTrainingRead | None:
    if not model.sr_head_jobs:
        return None
    job = model.sr_head_jobs[-1]
    factor = job.params.get("factor")
    return HeadTrainingRead(
        job_id=job.id,
        state=JobState(job.state),
        factor=float(factor) if factor is not None else None,
        progress=progress_read(job.progress),
        error=job.error,
    )


def stage_counts(model: Model, job: Job | None) -> tuple[int | None, int | None]:
    """(planned, trained): trained counts the finished stages while the training runs, then what the
    checkpoint holds."""
    stages = (model.train_config or {}).get("train_stages")
    planned = int(stages) if stages is not None else None
    if model.stages_trained is not None:
        return planned, model.stages_trained
    if job is not None and job.state == JobState.SUCCEEDED:
        return planned, planned
    return planned, job.stages_done if job is not None else None


def model_queue_position(session: Session, model: Model) -> int | None:
    """Its training's place in the queue (None unless queued): one COUNT, for queued models only."""
    job = model.train_job
    return fair_share.queue_position(session, job) if job is not None else None


def model_read(
    model: Model,
    storage: Storage,
    base_url: str,
    max_sr_output_pixels: int = v.SR_MAX_OUTPUT_PIXELS,
    queue_position: int | None = None,
) -> ModelRead:
    """`queue_position`: from `model_queue_position` (this function reads nothing)."""
    job = model.train_job
    planned, trained = stage_counts(model, job)
    base = f"/v1/models/{model.id}"
    links = {
        "self": base,
        "input": f"{base}/input",
        "samples": f"{base}/samples",
        "jobs": f"/v1/jobs?model_id={model.id}",
        "cancel": f"{base}/cancel",
    }
    if job:
        links["job"] = f"/v1/jobs/{job.id}"
        if job.state == JobState.SUCCEEDED:
            links["checkpoint"] = f"{base}/checkpoint"
            links["super_resolutions" if model.sr_head else "sr_head"] = (
                f"{base}/super-resolutions" if model.sr_head else f"{base}/sr-head"
            )
    return ModelRead(
        id=model.id,
        state=JobState(job.state) if job else JobState.FAILED,
        params=model.params,
        train_config=model.train_config,
        image=ImageInfo(width=model.image_width, height=model.image_height),
        input_url=input_url(model, storage, base_url),
        progress=progress_read(job.progress if job else None),
        queue_position=queue_position,
        error=job.error if job else "training job missing",
        cancel_requested=bool(job and job.cancel_requested),
        train_job_id=job.id if job else None,
        webhook_url=model.webhook_url,
        webhook_events=list(model.webhook_events or []),
        sr_head=sr_head_read(model, max_sr_output_pixels),
        sr_head_training=head_training_read(model),
        stages_planned=planned,
        stages_trained=trained,
        created_at=model.created_at,
        started_at=job.started_at if job else None,
        finished_at=job.finished_at if job else None,
        duration_s=_duration(job.started_at, job.finished_at) if job else None,
        links=links,
    )


def sample_read(sample: Sample, storage: Storage, base_url: str) -> SampleRead:
    url = storage.presigned_url(sample.key) or (
        f"{base_url.rstrip('/')}/v1/models/{sample.model_id}/samples/{sample.id}/content"
    )
    return SampleRead(
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


def job_file_url(job: Job, name: str, storage: Storage, base_url: str) -> str:
    route = FILE_ROUTES.get(name, f"files/{name}")
    return (
        storage.presigned_url(job_file_key(job, name)) or f"{base_url.rstrip('/')}/v1/jobs/{job.id}/{route}"
    )


def job_result_read(job: Job, storage: Storage, base_url: str) -> JobResultRead | None:
    comparison = (job.result or {}).get("comparison")
    names = [name for name in job_file_names(job) if name != comparison]
    if not names:
        return None
    files = [
        JobFileRead(name=name, media_type=MEDIA_TYPES[name], url=job_file_url(job, name, storage, base_url))
        for name in names
    ]
    checkpoint = next((f.url for f in files if f.name == CHECKPOINT_FILE), None)
    # the rest of `result` is facts about the output (an animation's frames, an enlargement's factor, ...)
    skipped = ("attempt", "files", "comparison")
    facts = {name: value for name, value in (job.result or {}).items() if name not in skipped}
    comparison_url = job_file_url(job, comparison, storage, base_url) if comparison else None
    return JobResultRead(
        url=files[0].url, checkpoint_url=checkpoint, files=files, comparison_url=comparison_url, **facts
    )


def job_read(session: Session, storage: Storage, job: Job, base_url: str) -> JobRead:
    samples, result = None, None
    if job.state == JobState.SUCCEEDED:
        samples = [sample_read(s, storage, base_url) for s in service.job_samples(session, job)]
        result = job_result_read(job, storage, base_url)
    base = f"/v1/jobs/{job.id}"
    return JobRead(
        id=job.id,
        kind=job.kind,
        state=JobState(job.state),
        model_id=job.model_id,
        params=job.params,
        progress=progress_read(job.progress),
        queue_position=fair_share.queue_position(session, job),
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


def stage_preview_url(model_id: str, stage: int, storage: Storage, base_url: str) -> str:
    return storage.presigned_url(stage_preview_key(model_id, stage)) or (
        f"{base_url.rstrip('/')}/v1/models/{model_id}/stages/{stage}/preview"
    )


def event_read(event: JobEvent, job: Job, storage: Storage, base_url: str) -> JobEventRead:
    links = JobEventLinks()
    data = event.data or {}
    if event.type == JobEventType.STAGE_DONE and "preview" in data and "stage" in data:
        links.preview = stage_preview_url(job.model_id, int(data["stage"]), storage, base_url)
    return JobEventRead(
        id=event.id,
        type=JobEventType(event.type),
        message=event.message,
        data=event.data,
        created_at=event.created_at,
        links=links,
    )


def pyramid_read(width: int, height: int, pyramid: Pyramid) -> PyramidRead:
    stages = [ImageInfo(width=w, height=h) for h, w in pyramid.stage_sizes]
    return PyramidRead(
        image=ImageInfo(width=width, height=height),
        top=stages[-1],
        stages=stages,
        train_config=pyramid.config,
    )


def vocabulary_read(settings: Settings) -> VocabularyRead:
    def span(bounds: tuple[int, int]) -> IntRange:
        return IntRange(min=bounds[0], max=bounds[1])

    presets = [
        PresetRead(
            name=preset,
            description=v.PRESET_DESCRIPTIONS[preset],
            modes={mode: resolve_training({"preset": preset, "mode": mode}) for mode in v.MODES},
            fine_tune_iters=v.FINE_TUNE_ITERS_DEFAULT[preset],
            sr_head_iters=v.SR_HEAD_ITERS_DEFAULT[preset],
        )
        for preset in v.PRESETS
    ]
    limits = LimitsRead(
        train_stages=span(v.TRAIN_STAGES_RANGE),
        iters_per_stage=span(v.ITERS_PER_STAGE_RANGE),
        image_size=span(v.IMAGE_SIZE_RANGE),
        samples_per_job=IntRange(min=1, max=v.SAMPLES_PER_JOB_MAX),
        sample_scale=FloatRange(min=v.SAMPLE_SCALE_RANGE[0], max=v.SAMPLE_SCALE_RANGE[1]),
        fine_tune_iters=span(v.FINE_TUNE_ITERS_RANGE),
        animation_frames=span(v.ANIMATION_FRAMES_RANGE),
        animation_fps=FloatRange(min=v.ANIMATION_FPS_RANGE[0], max=v.ANIMATION_FPS_RANGE[1]),
        animation_max_frame_pixels=v.ANIMATION_MAX_FRAME_PIXELS,
        sr_factor=FloatRange(min=v.SR_FACTOR_MIN, max=v.SR_FACTOR_MAX),
        sr_variants=IntRange(min=1, max=v.SR_VARIANTS_MAX),
        sr_noise_scale=FloatRange(min=v.SR_NOISE_SCALE_RANGE[0], max=v.SR_NOISE_SCALE_RANGE[1]),
        sr_max_output_pixels=settings.max_sr_output_pixels,
        seed_max=v.SEED_MAX,
        max_upload_bytes=settings.max_upload_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_image_side=settings.max_image_side,
        min_image_side=settings.min_image_side,
    )
    return VocabularyRead(
        job_kinds=list(JobKind),
        modes=[ModeRead(name=mode, description=v.MODE_DESCRIPTIONS[mode]) for mode in v.MODES],
        presets=presets,
        composites=list(v.COMPOSITES),
        default_composite=v.DEFAULT_COMPOSITE,
        animation_formats=list(v.ANIMATION_FORMATS),
        sr_modes=list(v.SR_MODES),
        paint_modes=list(v.PAINT_MODES),
        limits=limits,
    )
