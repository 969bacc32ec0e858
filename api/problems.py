"""RFC 9457 problem+json for every error: service errors, validation errors, 404/405 and crashes alike."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from core.errors import ServiceError
from core.infra import error_roots, unavailable_dependency

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://consingan.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
BODY_TOO_LARGE_FLAG = "consingan.body_too_large"  # set in the ASGI scope by api.limits

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Missing or invalid API key"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request,
    headers: dict[str, str] | None = None,
    **ext: Any,
) -> JSONResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    body["instance"] = request.url.path
    body.update(ext)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return problem(
        exc.status, exc.slug, exc.title, exc.detail, request, headers=exc.headers or None, **exc.extensions
    )


def _message(error: dict[str, Any]) -> str:
    """Pydantic prefixes a validator's ValueError with "Value error, ": the client needs the sentence only."""
    return str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # `ctx` and `input` may hold exceptions or bytes; the location, message and type are what clients need.
    return [
        {"loc": list(e.get("loc", ())), "msg": _message(e), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _jsonable_errors(exc)
    detail = (
        "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    )
    return problem(422, "validation", "Request validation failed", detail, request, errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if request.scope.get(BODY_TOO_LARGE_FLAG):
        # FastAPI turns any body-parsing failure into a 400; ours was the size limit.
        status = 413
    slug, title = HTTP_SLUGS.get(status, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and status != 413 else title
    headers = getattr(exc, "headers", None)
    if status == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request) or (headers or {}).get("Allow", "")}
    return problem(status, slug, title, detail, request, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method of every route on the request's path (RFC 9110: a 405 lists them all). Starlette's own
    `Allow` names only the first route that matched the path (`POST` for `PUT /v1/models`, not `GET, POST`).
    Mounts do not count: one (`/static`) matches every method, and its own 405 already lists what it serves."""
    routes = [route for route in request.app.routes if not isinstance(route, Mount)]
    allowed = [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem(
        500, "internal", "Internal error", "an unexpected error occurred; it has been logged", request
    )


async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
    """Database, storage and broker errors. One that means "unavailable" (refused, reset, timed out, 5xx) is
    a 503 with Retry-After: the client should retry, nothing is wrong with its request. Anything else is a
    500. Handled here, not by the catch-all `Exception` handler: that one answers and then re-raises, and the
    server closes the client's keep-alive connection, failing its next request too."""
    dependency = unavailable_dependency(exc)
    if dependency is None:
        return await _unexpected(request, exc)
    log.warning(
        "dependency unavailable",
        extra={
            "path": request.url.path,
            "dependency": dependency,
            "error": f"{type(exc).__name__}: {exc}"[:300],
        },
    )
    retry_after = request.app.state.services.settings.unavailable_retry_after_s
    return problem(
        503,
        "unavailable",
        "A dependency is unavailable",
        f"the {dependency} is unavailable right now; retry after {retry_after} s",
        request,
        headers={"Retry-After": str(retry_after)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error_type in error_roots():
        app.add_exception_handler(error_type, _dependency_error)
    app.add_exception_handler(Exception, _unexpected)
