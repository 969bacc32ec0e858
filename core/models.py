"""Tables. State lives here, not in Celery: jobs, their events, results and the webhook outbox."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class JobKind(StrEnum):
    TRAIN = "train"
    SAMPLE = "sample"
    HARMONIZE = "harmonize"  # also editing models
    ANIMATE = "animate"
    TRAIN_SR_HEAD = "train_sr_head"
    SUPER_RESOLVE = "super_resolve"
    PAINT = "paint"  # paint-to-image on a generation or retarget model


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})


class JobEventType(StrEnum):
    """Every kind of line a job's event log holds (`core.jobs.add_event` takes only these)."""

    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"  # a training passed a milestone (25/50/75/100 %)
    STAGE_DONE = "stage_done"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    CANCEL_REQUESTED = "cancel_requested"
    REQUEUED = "requeued"  # the reaper gave a dead worker's job back to the queue
    GIVEN_BACK = "given_back"  # a dependency stayed unavailable: back to the queue, the attempt not counted


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Owner(Base):
    __tablename__ = "owners"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    webhook_secret: Mapped[str] = mapped_column(String(100))  # whsec_<base64>, signs this owner's webhooks
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(
        String(64), unique=True
    )  # sha256 hex; the key itself is never stored
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a key in a listing
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    owner: Mapped[Owner] = relationship(lazy="joined")


class Model(Base):
    """One uploaded image and the GAN trained on it. Its state is its train job's state."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    params: Mapped[dict[str, Any]] = mapped_column(
        JSON
    )  # what the client asked for (preset, mode, sizes, seed)
    train_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the engine config the worker resolved
    image_width: Mapped[int] = mapped_column(Integer)
    image_height: Mapped[int] = mapped_column(Integer)
    input_key: Mapped[str] = mapped_column(String(200))
    checkpoint_key: Mapped[str | None] = mapped_column(String(200))
    # the trained super-resolution head, when there is one: {"key", "sr_train", "passes", "r0", "noise_amp",
    # "iterations", "trained_on": [h, w]} (the facts its safetensors header holds, so the API needs no read)
    sr_head: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # stages of the pyramid the checkpoint holds when fewer than planned (a training canceled with
    # keep_trained_stages); None: all of them
    stages_trained: Mapped[int | None] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_events: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    # joined, not selectin: loading a model (or a page of them) is one query, not two (bench/wrk_load.py)
    train_job: Mapped[Job | None] = relationship(
        primaryjoin="and_(Job.model_id == Model.id, Job.kind == 'train')", viewonly=True, lazy="joined"
    )
    # its super-resolution heads' trainings, oldest first (selectin: one query for a whole page of models)
    sr_head_jobs: Mapped[list[Job]] = relationship(
        primaryjoin="and_(Job.model_id == Model.id, Job.kind == 'train_sr_head')",
        viewonly=True,
        lazy="selectin",
        order_by="Job.id",
    )

    __table_args__ = (Index("ix_models_owner_id_id", "owner_id", "id"),)


class Job(Base):
    """A unit of GPU work. Every state change is a conditional UPDATE in core.jobs."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # a training's cancel asked to keep the stages finished so far (the model succeeds with them)
    keep_trained_stages: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims; fences each attempt's writes
    # attempts that gave the job back because a dependency was unavailable: not counted against max_attempts
    given_back: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # when the first give-back of the current outage happened; the job fails once that lasts too long
    unavailable_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    stages_done: Mapped[int] = mapped_column(Integer, default=0)  # finished stages with a stored snapshot
    error: Mapped[str | None] = mapped_column(Text)
    # what a succeeded job produced besides samples: {"files": [names under its job prefix], ...facts}
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # the lane it waits in ("long" or "interactive", core.vocabulary.lane_of, decided when it is created) and its
    # fair-share priority there: the owner's unfinished jobs in that lane when it was queued, capped; its task
    # message carries it (0 is served first)
    lane: Mapped[str] = mapped_column(String(20), server_default="long")
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("ix_jobs_state_created_at", "state", "created_at"),
        Index("ix_jobs_owner_id_id", "owner_id", "id"),
        Index("ix_jobs_lane_state_priority", "lane", "state", "priority", "created_at"),
    )


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))  # a JobEventType
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)


class Sample(Base):
    """One generated image: a training preview or the output of a sample job."""

    __tablename__ = "samples"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    is_preview: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_samples_model_id_id", "model_id", "id"),)


class WebhookDelivery(Base):
    """The outbox: written in the same transaction as the state change it announces."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the `webhook-id`, the same on every retry
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    model_id: Mapped[str | None] = mapped_column(String(40))  # no FK: the record outlives a deleted model
    job_id: Mapped[str | None] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(60))
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[str] = mapped_column(Text)  # the exact body, so every retry sends the same bytes
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class IdempotencyRecord(Base):
    """A remembered response to (owner, Idempotency-Key), with a hash of the request it answered."""

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("owner_id", "key", name="uq_idempotency_records_owner_id_key"),)


class IterationSpeed(Base):
    """One measured pace: the seconds per iteration a worker's device took over one phase of a training (a
    pyramid stage, or the super-resolution head), kept so that estimates come from this service's own workers
    (`core/estimates.py`, `GET /v1/estimate`, the running ETA)."""

    __tablename__ = "iteration_speeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(120))  # "cpu", "cuda:NVIDIA H200": one fit per device kind
    phase: Mapped[str] = mapped_column(String(16))  # "stage" or "sr_head"
    stage: Mapped[int] = mapped_column(Integer)  # the stage's index (the head: the pyramid's stage count)
    # pixels one iteration runs through: at a stage, its own and every coarser stage's (the generator runs
    # the whole chain); for the head, the top image's
    pixels: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)  # the networks' width: the cost grows with its square
    iterations: Mapped[int] = mapped_column(Integer)  # how many iterations the pace was measured over
    seconds_per_iteration: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_iteration_speeds_device_phase_id", "device", "phase", "id"),)
