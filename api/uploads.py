"""Request bodies at the door: the content type a route expects, and images read within their size limit and
validated (header before decode) before anything else happens. Unknown form fields are refused by the form's
model (`extra="forbid"`)."""

from __future__ import annotations

from fastapi import Request, UploadFile
from starlette.concurrency import run_in_threadpool

from api.limits import read_limited
from core.errors import ServiceError, UnsupportedMediaType
from core.images import ACCEPTED_FORMATS, ValidImage, validate_image
from core.settings import Settings

DECLARED_IMAGE_TYPES = {*ACCEPTED_FORMATS.values(), "application/octet-stream", ""}
MULTIPART = (
    "multipart/form-data"  # a form model's media type: `Annotated[XCreate, Form(media_type=MULTIPART)]`
)


def require_multipart(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            f"send multipart/form-data with an `image` file, not {content_type or 'no body'}"
        )


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.lower().startswith("application/json"):
        raise UnsupportedMediaType(f"send application/json, not {content_type}")


async def read_image(upload: UploadFile, settings: Settings, field: str | None = None) -> ValidImage:
    """Checks in order of cost: declared type, size while reading, then Pillow. With `field`, the problem's
    detail names the part (a request with two images)."""
    try:
        if (upload.content_type or "").lower() not in DECLARED_IMAGE_TYPES:
            raise UnsupportedMediaType(
                f"the {field or 'image'} part is declared {upload.content_type}; send PNG, JPEG or WebP"
            )
        raw = await read_limited(upload, settings.max_upload_bytes)
        return await run_in_threadpool(
            validate_image,
            raw,
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            min_side=settings.min_image_side,
        )
    except ServiceError as e:
        if field is None:
            raise
        raise type(e)(f"{field}: {e.detail}", headers=e.headers, **e.extensions) from e
