"""Typed settings for the API, the worker and the embedded runner.

Everything comes from environment variables with the `CONSINGAN_` prefix (e.g. `CONSINGAN_DATABASE_URL`).
The defaults are the embedded mode: a SQLite file and a local folder under ./data, no broker.
Built by `get_settings()`, never at import time, so tests and subprocesses can pass their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Svix's schedule (Standard Webhooks): immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h -> about 27.6 h.
DEFAULT_WEBHOOK_SCHEDULE_S = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSINGAN_", extra="ignore")

    # --- database and queue ---
    database_url: str = Field(
        "sqlite:///./data/consingan.db", description="SQLAlchemy URL (Postgres in production)"
    )
    queue_mode: Literal["celery", "embedded"] = Field(
        "embedded",
        description="celery: send tasks to the broker; embedded: the local worker polls the database",
    )
    broker_url: str = Field("redis://localhost:6379/0", description="Celery broker (Redis)")
    gpu_queue: str = Field("gpu", description="Celery queue for train/sample/harmonize tasks")
    webhooks_queue: str = Field("webhooks", description="Celery queue for webhook deliveries")
    visibility_timeout_s: int = Field(
        2 * 24 * 3600,
        description="Redis visibility timeout; must exceed the longest job or tasks are redelivered",
    )
    task_time_limit_s: int = Field(24 * 3600, description="hard time limit of one task")
    database_connect_timeout_s: float = Field(
        5.0, description="a database connection not established within this counts as unavailable"
    )
    broker_connect_timeout_s: float = Field(
        3.0, description="a broker connection not established within this counts as unavailable"
    )
    broker_reconnect_max_s: float = Field(
        2.0, description="longest wait between a worker's attempts to reconnect to a lost broker"
    )

    # --- object storage ---
    storage_backend: Literal["local", "s3"] = Field(
        "local", description="local folder or S3-compatible storage"
    )
    storage_dir: Path = Field(Path("./data/objects"), description="root folder of the local backend")
    s3_bucket: str = Field("consingan", description="bucket of the S3 backend")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto); None means AWS")
    s3_public_endpoint_url: str | None = Field(
        None,
        description="endpoint in the presigned URLs clients download from, when they reach storage at "
        "another address than the service (compose: http://localhost:9000); None: the S3 endpoint",
    )
    s3_region: str = Field("us-east-1", description="S3 region")
    s3_access_key_id: str | None = Field(None, description="S3 credentials; None uses boto3's default chain")
    s3_secret_access_key: str | None = Field(None, description="S3 credentials")
    presign_expiry_s: int = Field(900, description="lifetime of presigned download URLs")
    storage_connect_timeout_s: float = Field(
        2.0, description="an S3 connection not established within this is retried, then unavailable"
    )
    storage_read_timeout_s: float = Field(
        10.0, description="an S3 socket silent for this long is retried, then unavailable"
    )
    storage_max_attempts: int = Field(
        2, description="tries of one S3 call (the first included) before it counts as unavailable"
    )

    # --- HTTP API ---
    max_upload_bytes: int = Field(20 * 1024 * 1024, description="largest accepted image file")
    max_image_pixels: int = Field(
        4096 * 4096,
        description="largest decoded width*height, checked before decoding (a training JPEG counts at the "
        "reduced size it is decoded at)",
    )
    max_concurrent_decodes: int = Field(
        2, ge=1, description="uploads one API process decodes at once; the others wait their turn (memory)"
    )
    max_image_side: int = Field(8192, description="largest accepted width or height")
    min_image_side: int = Field(16, description="smallest accepted width or height")
    prefer_wait_max_s: float = Field(60.0, description="cap of `Prefer: wait=N`")
    wait_poll_interval_s: float = Field(
        0.25,
        description="how often `Prefer: wait` and an event stream re-read a job when no notification channel "
        "is live (SQLite with the worker in another process, or the listener reconnecting)",
    )
    wait_recheck_interval_s: float = Field(
        5.0,
        description="with a live notification channel (Postgres LISTEN), the safety re-read of a waited-on job",
    )
    sse_heartbeat_s: float = Field(
        15.0, description="an event stream sends a comment line this often, so proxies keep it open"
    )
    idempotency_ttl_s: int = Field(24 * 3600, description="how long an Idempotency-Key is remembered")
    max_queued_jobs_per_owner: int = Field(
        20, description="unfinished (queued or running) jobs one owner may have; more get 429 + Retry-After"
    )
    queue_full_retry_after_s: int = Field(30, description="Retry-After sent with that 429")
    max_json_body_bytes: int = Field(64 * 1024, description="largest accepted JSON request body")
    allow_private_webhook_urls: bool = Field(
        False, description="accept webhook URLs on loopback/private addresses (tests, local development)"
    )

    # --- worker ---
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu")
    progress_interval_s: float = Field(3.0, description="at most one progress write per this many seconds")
    cancel_poll_interval_s: float = Field(1.0, description="how often training re-reads the cancel flag")
    preview_samples: int = Field(8, description="samples stored automatically after a training")
    max_sr_output_pixels: int = Field(
        4_194_304,
        description="largest super-resolution output, width x height (2048^2); a 422 says the largest factor",
    )
    max_attempts: int = Field(3, description="how often a job may be claimed before it is failed")
    embedded_poll_interval_s: float = Field(
        1.0, description="how often the embedded worker looks for queued jobs"
    )
    heartbeat_interval_s: float = Field(
        5.0, description="how often a running job's worker writes its heartbeat"
    )
    heartbeat_timeout_s: float = Field(
        60.0, description="a running job whose heartbeat is older than this is re-queued by the reaper"
    )
    reaper_interval_s: float = Field(30.0, description="how often Celery beat runs the crash reaper")
    infra_retry_s: float = Field(
        120.0,
        description="a running job retries an unavailable database, broker or storage this long, then "
        "goes back to `queued` without spending an attempt",
    )
    infra_outage_limit_s: float = Field(
        1800.0,
        description="a job given back for unavailable infrastructure fails once the outage has lasted this long",
    )
    unavailable_retry_after_s: int = Field(
        5, description="Retry-After sent with a 503 while the database, broker or storage is unavailable"
    )

    worker_metrics_port: int = Field(
        0, description="Prometheus port of a Celery worker's main process (0: off; compose uses 9101)"
    )
    worker_metrics_addr: str = Field("0.0.0.0", description="address the worker metrics port binds")
    worker_metrics_dir: Path = Field(
        Path("/tmp/consingan-worker-metrics"),
        description="prometheus_client multiprocess files (a subfolder per port, wiped at worker start)",
    )

    cleanup_interval_s: float = Field(
        3600.0, description="how often orphaned objects and old records are removed"
    )
    orphan_grace_s: int = Field(
        3600, description="an object with no row is removed once it is this old (uploads write objects first)"
    )
    sample_retention_s: int = Field(
        30 * 24 * 3600,
        description="drawn samples (not training previews) are deleted after this; 0 keeps them",
    )

    # --- webhooks ---
    webhook_timeout_s: float = Field(
        15.0, description="a delivery without an answer within this counts as failed"
    )
    webhook_schedule_s: tuple[int, ...] = Field(
        DEFAULT_WEBHOOK_SCHEDULE_S, description="delay before each delivery attempt (JSON list in the env)"
    )
    webhook_sweep_interval_s: float = Field(5.0, description="how often due webhook retries are dispatched")

    # --- embedded runner and logging ---
    host: str = Field("127.0.0.1", description="address the embedded API listens on")
    port: int = Field(8000, description="port the embedded API listens on")
    log_format: Literal["json", "text"] = Field(
        "json",
        description="json: one JSON object per line; text: `time LEVEL logger: message key=value` "
        "(what `make run` prints unless this is set)",
    )
    log_level: str = Field("INFO", description="root log level")

    @model_validator(mode="after")
    def _visibility_outlasts_jobs(self) -> Settings:
        # Otherwise Redis hands a still-running job to a second worker (celery/celery#5935).
        if self.visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError("visibility_timeout_s must be larger than task_time_limit_s")
        if self.heartbeat_timeout_s <= 2 * self.heartbeat_interval_s:
            # One late heartbeat (a slow database, a GC pause) must not get a live job re-queued.
            raise ValueError("heartbeat_timeout_s must be more than twice heartbeat_interval_s")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings(**overrides: object) -> Settings:
    """Read the environment now; keyword overrides win (used by tests and the embedded runner)."""
    return Settings(**overrides)  # type: ignore[arg-type]
