"""Typed service errors. Each carries a stable problem slug; the API renders them as RFC 9457 problems."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    slug = "internal"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


class NotFound(ServiceError):
    slug, status, title = "not-found", 404, "Not found"


class Conflict(ServiceError):
    slug, status, title = "conflict", 409, "Conflict with the resource's state"


class IdempotencyConflict(ServiceError):
    slug, status, title = "idempotency-conflict", 422, "Idempotency-Key reused with a different request"


class InvalidImage(ServiceError):
    slug, status, title = "invalid-image", 422, "The upload is not an acceptable image"


class UnsupportedMediaType(ServiceError):
    slug, status, title = "unsupported-media-type", 415, "Unsupported media type"


class PayloadTooLarge(ServiceError):
    slug, status, title = "payload-too-large", 413, "Payload too large"


class InvalidParameter(ServiceError):
    slug, status, title = "validation", 422, "Request validation failed"


class TooManyJobs(ServiceError):
    slug, status, title = "too-many-jobs", 429, "Too many unfinished jobs"


class ServiceUnavailable(ServiceError):
    slug, status, title = "unavailable", 503, "A dependency is unavailable"


class SRHeadMissing(ServiceError):
    slug, status, title = "sr-head-missing", 409, "The model has no super-resolution head"


class OutputTooLarge(ServiceError):
    slug, status, title = "output-too-large", 422, "The output would be larger than the service renders"


class NothingToKeep(ServiceError):
    """A cancel with keep_trained_stages of a training that has no finished stage to keep."""

    slug, status, title = "nothing-to-keep", 409, "No trained stage to keep"
