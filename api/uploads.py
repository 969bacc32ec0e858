"""Request bodies at the door: the content type a route expects, and images read within their size limit and
validated (header before decode) before anything else happens. Unknown form fields are refused by the form's
model (`extra="forbid"`), fields sent twice here (`refuse_repeated_fields`)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable

import anyio
import anyio.to_thread
from fastapi import Request, UploadFile

from api.limits import read_limited
from core.errors import InvalidParameter, ServiceError, UnsupportedMediaType
from core.images import ACCEPTED_FORMATS, ValidImage, validate_image
from core.settings import Settings

DECLARED_IMAGE_TYPES = {*ACCEPTED_FORMATS.values(), "application/octet-stream", ""}
MULTIPART = (
    "multipart/form-data"  # a form model's media type: `Annotated[XCreate, Form(media_type=MULTIPART)]`
)


def multipart_with(*files: str) -> Callable[[Request], None]:
    """A dependency refusing anything but multipart/form-data with a 415 that names the route's file fields."""
    named = " and ".join(f"`{name}`" for name in files)

    def require_multipart(request: Request) -> None:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise UnsupportedMediaType(
                f"send multipart/form-data with {named} image files, not {content_type or 'no body'}"
            )

    return require_multipart


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.lower().startswith("application/json"):
        raise UnsupportedMediaType(f"send application/json, not {content_type}")


def json_not_images(why: str) -> Callable[[Request], None]:
    """`require_json` for a route people may try to send an image to: the 415 says what to do instead."""

    def require_json_body(request: Request) -> None:
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith(("multipart/", "image/")):
            raise UnsupportedMediaType(why)
        require_json(request)

    return require_json_body


async def refuse_repeated_fields(request: Request, repeatable: Iterable[str] = ()) -> None:
    """A field sent twice (`preset=quick` and `preset=paper`, a second `image`) must not silently take one of
    them: the form's model reads only the last. (A misspelt field is the model's own 422: `extra="forbid"`.)"""
    names = [name for name, _ in (await request.form()).multi_items()]
    counts = Counter(names)
    repeated = sorted(name for name, count in counts.items() if count > 1 and name not in set(repeatable))
    if repeated:
        errors = [
            {"loc": ["body", name], "msg": f"sent {counts[name]} times; send it once", "type": "duplicate"}
            for name in repeated
        ]
        raise InvalidParameter(f"form fields sent more than once: {', '.join(repeated)}", errors=errors)


def decode_limiter(settings: Settings) -> anyio.CapacityLimiter:
    """Built once per app: at most `max_concurrent_decodes` uploads of this process are decoded at once. A
    waiting request holds no worker thread and no decoded pixels, only its (size-limited) upload bytes."""
    return anyio.CapacityLimiter(settings.max_concurrent_decodes)


async def read_image(
    request: Request, upload: UploadFile, field: str | None = None, reduce_to: int | None = None
) -> ValidImage:
    """Checks in order of cost: declared type, size while reading, then Pillow. With `field`, the problem's
    detail names the part (a request with two images). `reduce_to`: see `core.images.validate_image`."""
    settings: Settings = request.app.state.services.settings
    try:
        if (upload.content_type or "").lower() not in DECLARED_IMAGE_TYPES:
            raise UnsupportedMediaType(
                f"the {field or 'image'} part is declared {upload.content_type}; send PNG, JPEG or WebP"
            )
        raw = await read_limited(upload, settings.max_upload_bytes)
        validate = functools.partial(
            validate_image,
            raw,
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            min_side=settings.min_image_side,
            reduce_to=reduce_to,
        )
        return await anyio.to_thread.run_sync(validate, limiter=request.app.state.decode_limiter)
    except ServiceError as e:
        if field is None:
            raise
        raise type(e)(f"{field}: {e.detail}", headers=e.headers, **e.extensions) from e
