"""The OpenAPI contract's rules, in one place, so that every route describes its answers the same way and
clients generated from `/openapi.json` (openapi-python-client, openapi-typescript) work unpatched.

A route declares:
- the errors it can answer: `problem_responses(409, ...)` (a router gives 401, 404, 422 and 503 to all its
  routes: any route that reads the database or storage answers 503 while one is down; `creating_responses`
  adds those of a body and a submission). Each is a `Problem` (application/problem+json); 429 and 503 carry
  `Retry-After`.
- creating work: `status_code=202, response_model=X, responses=creating_responses(X, example, ...)`: the 202
  and the 200 of `Prefer: wait=N` have the same schema, and both a `Location`.
- sending a stored file: `response_class=Response, responses=download_responses(media types)`: 200 with the
  bytes (`format: binary`), or 307 to object storage with its `Location`.
- a multipart file: a `FilePart` field of the form's model (api/schemas.py), never a bare `UploadFile`.
- its function's name, unique in the API, is its operationId (`operation_id`): what generated clients call
  (`create_model`, `list_job_events`).
- examples from api/examples.py (module-level dicts): FastAPI drops their nulls, `install_contract` puts
  back those it finds there.

`tests/contract/test_contract_openapi.py` walks the live document and names the route that breaks a rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api import examples
from api.problems import HTTP_SLUGS, PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from api.schemas import Problem
from core import errors

Responses = dict[int | str, dict[str, Any]]

REF = "#/components/schemas/"
JSON = "application/json"
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
# Every download may also be read as plain bytes: the one binary type each client generator understands
# (openapi-python-client drops a response it only knows as image/png).
ANY_BYTES = "application/octet-stream"

# status -> (problem slug, title, what it means unless the route says more)
PROBLEM_KINDS: dict[int, tuple[str, str, str]] = {
    400: (*HTTP_SLUGS[400], "the body does not parse (malformed multipart)"),
    401: (*HTTP_SLUGS[401], "send `Authorization: Bearer <api key>`"),
    404: (errors.NotFound.slug, errors.NotFound.title, "no such resource (another owner's do not exist)"),
    409: (errors.Conflict.slug, errors.Conflict.title, "the resource's state does not allow it"),
    413: (errors.PayloadTooLarge.slug, errors.PayloadTooLarge.title, "an image, or the body, is too large"),
    415: (
        errors.UnsupportedMediaType.slug,
        errors.UnsupportedMediaType.title,
        "the body's content type, or an image's format, is not accepted",
    ),
    422: (
        errors.InvalidParameter.slug,
        errors.InvalidParameter.title,
        "invalid input (`errors` lists each), an unacceptable image, or an Idempotency-Key reused for "
        "another request",
    ),
    405: (*HTTP_SLUGS[405], "this path does not take that method; `Allow` lists those it takes"),
    429: (
        errors.TooManyJobs.slug,
        errors.TooManyJobs.title,
        "too many unfinished jobs; retry after `Retry-After` seconds",
    ),
    503: (
        errors.ServiceUnavailable.slug,
        errors.ServiceUnavailable.title,
        "the database, object storage or job queue is unavailable for a moment; nothing was changed by a "
        "submission, retry after `Retry-After` seconds",
    ),
}
# Retry-After: required on every 429 and every 503 (api/problems.py sends it with each)
RETRY_AFTER_REQUIRED = {429: True, 503: True}
# what every creating route can answer besides 401/404/422: its body, the early 429, the broker
CREATING_PROBLEMS = (400, 413, 415, 429, 503)


def operation_id(route: APIRoute) -> str:
    """The route function's name: `create_model` rather than FastAPI's `create_model_v1_models_post`."""
    return route.name


def header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def problem_responses(*statuses: int, notes: Mapping[int, str] | None = None) -> Responses:
    """The error answers of a route (or of every route of a router): `notes` says what a status means there."""
    responses: Responses = {}
    for status in statuses:
        slug, title, meaning = PROBLEM_KINDS[status]
        detail = (notes or {}).get(status, meaning)
        example = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
        response: dict[str, Any] = {
            "description": detail,
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": REF + Problem.__name__},
                    "example": {**example, "instance": "/v1/models"},
                }
            },
        }
        if status == 405:
            allow = header("the methods this path takes, e.g. `GET, DELETE`", {"type": "string"}, True)
            response["headers"] = {"Allow": allow}
        if status in RETRY_AFTER_REQUIRED:
            seconds = {"type": "integer", "minimum": 0}
            retry_after = header("seconds to wait before retrying", seconds, RETRY_AFTER_REQUIRED[status])
            response["headers"] = {"Retry-After": retry_after}
        responses[status] = response
    return responses


def creating_responses(
    model: type[BaseModel],
    example: dict[str, Any],
    queued: str,
    finished: str,
    notes: Mapping[int, str] | None = None,
) -> Responses:
    """A creating route's answers: 202 (queued), 200 (ended within `Prefer: wait=N`), both the resource at
    `Location`; and the problems every submission can meet (`notes` as in `problem_responses`)."""
    location = header("the created resource: GET it to follow the work", {"type": "string"}, required=True)
    applied = "`wait=N` as applied (N capped); present when `Prefer: wait` was sent"
    return {
        202: {
            "description": queued,
            "headers": {
                "Location": location,
                "Preference-Applied": header(applied, {"type": "string"}),
                "Idempotent-Replayed": header(
                    "`true` when an Idempotency-Key answered from memory",
                    {"type": "string", "enum": ["true"]},
                ),
            },
            "content": {JSON: {"example": example}},
        },
        200: {
            "model": model,
            "description": finished,
            "headers": {
                "Location": location,
                "Preference-Applied": header(applied, {"type": "string"}, True),
            },
        },
        **problem_responses(*CREATING_PROBLEMS, notes=notes),
    }


def download_responses(*media_types: str) -> Responses:
    """A stored file's answers: its bytes (streamed from local storage) or a redirect to object storage."""
    types = dict.fromkeys([*media_types, ANY_BYTES])
    return {
        200: {
            "description": "the file's bytes (local storage: streamed by this API)",
            "content": {media_type: {"schema": BINARY} for media_type in types},
            "headers": {
                "Content-Disposition": header("`attachment` with a file name", {"type": "string"}, True)
            },
        },
        307: {
            "description": "object storage (S3): follow `Location`, a presigned URL that expires; it needs no "
            "API key (clients drop the Authorization header on the way)",
            "headers": {"Location": header("the presigned URL", {"type": "string", "format": "uri"}, True)},
        },
    }


# Schemas that responses name by $ref without FastAPI meeting them as a body or a `model=` response
# (a `model=` response lands under application/json; a problem is application/problem+json).
SHARED_SCHEMAS: tuple[type[BaseModel], ...] = (Problem,)


def _without_nulls(value: Any) -> Any:
    """An example as FastAPI writes it: every null member of an object dropped."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _restore_examples(node: Any, declared: list[tuple[Any, Any]]) -> None:
    """FastAPI drops every null member from the examples it writes (it encodes the document with
    exclude_none; fastapi#5559), so the example of a required nullable field (`error: null`) no longer
    validates. Each example that is a declared one (api/examples.py) less its nulls becomes it again."""
    if isinstance(node, list):
        for item in node:
            _restore_examples(item, declared)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "example":
            node[key] = next((full for stripped, full in declared if stripped == value), value)
        elif key == "examples" and isinstance(value, list):
            node[key] = [next((full for stripped, full in declared if stripped == v), v) for v in value]
        else:
            _restore_examples(value, declared)


def _declared_examples() -> list[tuple[Any, Any]]:
    found = [value for name, value in vars(examples).items() if not name.startswith("_")]
    return [(_without_nulls(value), value) for value in found if isinstance(value, dict)]


def _declare_method_not_allowed(document: dict[str, Any]) -> None:
    """Every path answers 405 (a problem, with `Allow`) to a method it does not take (`PUT /v1/models`); an
    OpenAPI document can only say so on the operations the path has, so each of them declares it."""
    (method_not_allowed,) = problem_responses(405).values()
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("405", method_not_allowed)


def install_contract(app: FastAPI) -> None:
    """The document FastAPI builds from the routes, plus the shared schemas the routes refer to, with the
    examples as declared."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()  # cached by FastAPI as app.openapi_schema: completed here once
        _, definitions = models_json_schema(
            [(model, "validation") for model in SHARED_SCHEMAS], ref_template=REF + "{model}"
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in definitions.get("$defs", {}).items():
            components.setdefault(name, schema)
        _restore_examples(document, _declared_examples())
        _declare_method_not_allowed(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
