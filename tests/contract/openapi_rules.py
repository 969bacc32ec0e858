"""The rules of the HTTP contract (api/contract.py), checked on an OpenAPI document: each function returns
the violations it finds, one line each, naming the operation, so a new route that breaks a rule is named.

- every 4xx/5xx answer is a `Problem` (application/problem+json), except the few listed in NOT_PROBLEMS;
- every 2xx answer with a body has a schema (JSON: a real one; files: `format: binary`);
- a creating operation (it takes `Prefer`) answers 200 with the schema of its 202, both with `Location`;
- every file part of a multipart form is `format: binary`, and a form is one flat object (no allOf);
- every 307 declares `Location`, every 429 and every problem 503 `Retry-After` (required);
- every operation that reads the database or storage (all but NO_DEPENDENCY) declares the 503 it answers
  while one is down;
- one cursor type: `next_cursor` and `after` are strings;
- header parameters are spelt as HTTP spells them (`Idempotency-Key`, `Prefer`);
- every example validates against its schema (`example_violations`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# (method, path, status) whose error body is not a problem, and why
NOT_PROBLEMS = {("get", "/readyz", "503"): "the readiness report names the dependency that is down"}
# (method, path) that answer without the database, storage or broker: no 503 problem (readyz reports instead)
NO_DEPENDENCY = {("get", "/healthz"), ("get", "/readyz")}
DOC_URI = "urn:consingan:openapi"

Operation = tuple[str, str, dict[str, Any]]


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow local $refs (`#/components/...`) until a node that is not one."""
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _problem_violations(where: str, status: str, response: dict[str, Any]) -> list[str]:
    content = response.get("content", {})
    schema = content.get(PROBLEM_MEDIA_TYPE, {}).get("schema")
    if schema != {"$ref": PROBLEM_REF}:
        return [f"{where} {status}: no Problem schema under {PROBLEM_MEDIA_TYPE} (has {sorted(content)})"]
    others = sorted(set(content) - {PROBLEM_MEDIA_TYPE})
    return [f"{where} {status}: a problem is only {PROBLEM_MEDIA_TYPE}, not also {others}"] if others else []


def _success_violations(where: str, status: str, response: dict[str, Any]) -> list[str]:
    content = response.get("content")
    if not content:
        return [] if status == "204" else [f"{where} {status}: a success without a declared body"]
    found = []
    for media_type, body in content.items():
        schema = body.get("schema")
        if not schema:
            found.append(f"{where} {status} {media_type}: no schema (clients return nothing)")
        elif (
            not is_json(media_type)
            and not media_type.startswith("text/")
            and schema.get("format") != "binary"
        ):
            found.append(f"{where} {status} {media_type}: a file's schema must be `format: binary`")
    return found


def _header(response: dict[str, Any], name: str) -> dict[str, Any] | None:
    header: dict[str, Any] | None = response.get("headers", {}).get(name)
    return header


def _header_violations(where: str, status: str, response: dict[str, Any]) -> list[str]:
    found = []
    if status == "307":
        location = _header(response, "Location")
        if not location or not location.get("required"):
            found.append(f"{where} 307: `Location` not declared (required)")
    if status == "429":
        retry = _header(response, "Retry-After")
        if not retry or not retry.get("required"):
            found.append(f"{where} 429: `Retry-After` not declared (required)")
    is_problem = PROBLEM_MEDIA_TYPE in response.get("content", {})
    if status == "503" and is_problem:
        retry = _header(response, "Retry-After")
        if not retry or not retry.get("required"):
            found.append(f"{where} 503: `Retry-After` not declared (required)")
    return found


def _creating_violations(where: str, operation: dict[str, Any]) -> list[str]:
    headers = {p["name"].lower() for p in operation.get("parameters", []) if p.get("in") == "header"}
    if "prefer" not in headers:
        return []
    responses = operation.get("responses", {})
    if "202" not in responses or "200" not in responses:
        return [f"{where}: a creating operation (it takes `Prefer`) answers 202 and 200"]
    queued = responses["202"].get("content", {}).get("application/json", {}).get("schema")
    finished = responses["200"].get("content", {}).get("application/json", {}).get("schema")
    found = []
    if not queued or queued != finished:
        found.append(
            f"{where}: the 200 of `Prefer: wait` must have the schema of the 202 ({finished} != {queued})"
        )
    for status in ("200", "202"):
        location = _header(responses[status], "Location")
        if not location or not location.get("required"):
            found.append(f"{where} {status}: `Location` not declared (required)")
    return found


def _walk_schema(document: dict[str, Any], schema: Any, seen: set[int]) -> Iterator[dict[str, Any]]:
    schema = resolve(document, schema)
    if not isinstance(schema, dict) or id(schema) in seen:
        return
    seen.add(id(schema))
    yield schema
    for key in ("properties", "$defs", "patternProperties"):
        for sub in schema.get(key, {}).values():
            yield from _walk_schema(document, sub, seen)
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for sub in schema.get(key, []):
            yield from _walk_schema(document, sub, seen)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            yield from _walk_schema(document, schema[key], seen)


def _form_violations(document: dict[str, Any], where: str, operation: dict[str, Any]) -> list[str]:
    form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
    if form is None:
        return []
    schema = resolve(document, form.get("schema"))
    found = []
    if (
        not isinstance(schema, dict)
        or "properties" not in schema
        or {"allOf", "anyOf", "oneOf"} & set(schema)
    ):
        found.append(
            f"{where}: a multipart form must be one object with its properties (no allOf: generators drop parts)"
        )
    for sub in _walk_schema(document, schema, set()):
        if "contentMediaType" in sub and sub.get("format") != "binary":
            found.append(f"{where}: a file part without `format: binary` ({sub.get('title', sub)})")
    return found


# Headers whose standard spelling is not plain capitalization (the HTML standard's SSE reconnect header).
STANDARD_SPELLINGS = frozenset({"Last-Event-ID"})


def _parameter_violations(where: str, operation: dict[str, Any]) -> list[str]:
    found = []
    for parameter in operation.get("parameters", []):
        name, place = parameter["name"], parameter.get("in")
        capitalized = "-".join(part.capitalize() for part in name.split("-"))
        if place == "header" and name != capitalized and name not in STANDARD_SPELLINGS:
            found.append(f"{where}: header parameter {name!r} is not spelt as HTTP spells it")
        if place == "query" and name == "after" and not _is_string_or_null(parameter.get("schema", {})):
            found.append(f"{where}: the `after` cursor must be a string, as `next_cursor` is")
    return found


def _is_string_or_null(schema: dict[str, Any]) -> bool:
    choices = schema.get("anyOf", [schema])
    return all(choice.get("type") in ("string", "null") for choice in choices) and any(
        choice.get("type") == "string" for choice in choices
    )


def _cursor_violations(document: dict[str, Any]) -> list[str]:
    found = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        cursor = schema.get("properties", {}).get("next_cursor")
        if cursor is not None and not _is_string_or_null(cursor):
            found.append(f"schema {name}: `next_cursor` must be a string (or null)")
    return found


def rule_violations(document: dict[str, Any]) -> list[str]:
    """Every rule but the examples', over every operation of the document."""
    found = _cursor_violations(document)
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        for status, response in operation.get("responses", {}).items():
            response = resolve(document, response)
            code = int(status) if status.isdigit() else 0
            if code >= 400 and (method, path, status) not in NOT_PROBLEMS:
                found += _problem_violations(where, status, response)
            if 200 <= code < 300:
                found += _success_violations(where, status, response)
            found += _header_violations(where, status, response)
        if (method, path) not in NO_DEPENDENCY and "503" not in operation.get("responses", {}):
            found.append(f"{where}: no 503 declared (a dependency down: `unavailable` with `Retry-After`)")
        found += _creating_violations(where, operation)
        found += _form_violations(document, where, operation)
        found += _parameter_violations(where, operation)
    return found


# --- examples -----------------------------------------------------------------------------------------------


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _examples_of_schema(schema: Any, pointer: str) -> Iterator[tuple[str, str, Any]]:
    """(where, pointer of the schema, example) for every `examples` entry in a schema and its subschemas."""
    if not isinstance(schema, dict):
        return
    for index, example in enumerate(
        schema.get("examples", []) if isinstance(schema.get("examples"), list) else []
    ):
        yield f"{pointer}/examples/{index}", pointer, example
    if "example" in schema:
        yield f"{pointer}/example", pointer, schema["example"]
    for key in ("properties", "$defs", "patternProperties"):
        for name, sub in schema.get(key, {}).items():
            yield from _examples_of_schema(sub, f"{pointer}/{key}/{_pointer(name)}")
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for index, sub in enumerate(schema.get(key, [])):
            yield from _examples_of_schema(sub, f"{pointer}/{key}/{index}")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            yield from _examples_of_schema(schema[key], f"{pointer}/{key}")


def _examples_of_carrier(carrier: dict[str, Any], pointer: str) -> Iterator[tuple[str, str, Any]]:
    """A parameter, header or media type: its own example(s) against its schema, and its schema's."""
    if "schema" not in carrier:
        return
    schema_pointer = f"{pointer}/schema"
    if "example" in carrier:
        yield f"{pointer}/example", schema_pointer, carrier["example"]
    for name, example in carrier.get("examples", {}).items():
        if "value" in example:
            yield f"{pointer}/examples/{_pointer(name)}", schema_pointer, example["value"]
    yield from _examples_of_schema(carrier["schema"], schema_pointer)


def all_examples(document: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, JSON pointer of the schema it must satisfy, example) for every example of the document."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        yield from _examples_of_schema(schema, f"#/components/schemas/{_pointer(name)}")
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            base = f"#/paths/{_pointer(path)}/{method}"
            operation = item[method]
            for index, parameter in enumerate(operation.get("parameters", [])):
                yield from _examples_of_carrier(parameter, f"{base}/parameters/{index}")
            for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
                yield from _examples_of_carrier(body, f"{base}/requestBody/content/{_pointer(media_type)}")
            for status, response in operation.get("responses", {}).items():
                for media_type, body in response.get("content", {}).items():
                    yield from _examples_of_carrier(
                        body, f"{base}/responses/{status}/content/{_pointer(media_type)}"
                    )
                for name, header in response.get("headers", {}).items():
                    yield from _examples_of_carrier(
                        header, f"{base}/responses/{status}/headers/{_pointer(name)}"
                    )


def example_violations(document: dict[str, Any]) -> tuple[int, list[str]]:
    """How many examples there are, and one line per example its schema refuses."""
    registry: Registry = Registry().with_resource(
        DOC_URI, Resource(contents=document, specification=DRAFT202012)
    )
    found, count = [], 0
    for where, schema_pointer, example in all_examples(document):
        count += 1
        validator = Draft202012Validator(
            {"$ref": DOC_URI + schema_pointer},
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        for error in validator.iter_errors(example):
            location = "/".join(str(p) for p in error.absolute_path)
            found.append(f"{where} at /{location}: {error.message[:200]}")
    return count, found
