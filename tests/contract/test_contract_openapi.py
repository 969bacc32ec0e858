"""The live `/openapi.json` is a valid OpenAPI 3.1 document, every example in it validates against its schema,
and every operation follows the contract's rules (tests/contract/openapi_rules.py). A route added later that
breaks a rule is named here: this is how new routes stay usable from generated clients."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Form, Header, Response, UploadFile
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict

from core.models import JobEventType, JobKind, JobState
from tests.contract.openapi_rules import example_violations, operations, rule_violations

SCHEMAS = "#/components/schemas/"


def test_the_document_is_valid_openapi_3_1(openapi_document: dict[str, Any]) -> None:
    assert openapi_document["openapi"].startswith("3.1.")
    validate(openapi_document)  # raises with the path of the first error
    ids = [operation["operationId"] for _, _, operation in operations(openapi_document)]
    assert len(ids) == len(set(ids)) and "create_model" in ids and "list_job_events" in ids


def test_every_example_validates_against_its_schema(openapi_document: dict[str, Any]) -> None:
    count, violations = example_violations(openapi_document)
    assert count >= 50, f"only {count} examples found: is the walk still finding them?"
    assert not violations, "\n".join(violations)


def test_every_operation_follows_the_contract(openapi_document: dict[str, Any]) -> None:
    violations = rule_violations(openapi_document)
    assert not violations, "\n".join(violations)


def test_closed_sets_are_enums_and_the_cursor_is_one_type(openapi_document: dict[str, Any]) -> None:
    schemas = openapi_document["components"]["schemas"]

    def enum(name: str) -> set[str]:
        return set(schemas[name]["enum"])

    assert schemas["JobRead"]["properties"]["kind"] == {"$ref": SCHEMAS + "JobKind"}
    assert enum("JobKind") == {kind.value for kind in JobKind}
    assert enum("JobState") == {state.value for state in JobState}
    assert schemas["JobEventRead"]["properties"]["type"] == {"$ref": SCHEMAS + "JobEventType"}
    assert enum("JobEventType") == {event.value for event in JobEventType}
    events = schemas["ModelRead"]["properties"]["webhook_events"]["items"]["enum"]
    assert set(events) == set(schemas["ModelCreate"]["properties"]["webhook_events"]["items"]["enum"])
    vocabulary = schemas["VocabularyRead"]["properties"]
    assert vocabulary["job_kinds"]["items"] == {"$ref": SCHEMAS + "JobKind"}
    assert set(vocabulary["composites"]["items"]["enum"]) == set(vocabulary["default_composite"]["enum"])
    assert "enum" in schemas["ModeRead"]["properties"]["name"]
    assert "enum" in schemas["PresetRead"]["properties"]["name"]
    # an event's links are named members, not an open map
    assert schemas["JobEventRead"]["properties"]["links"] == {"$ref": SCHEMAS + "JobEventLinks"}
    assert "additionalProperties" not in schemas["JobEventLinks"]
    (after,) = (
        p
        for p in openapi_document["paths"]["/v1/jobs/{job_id}/events"]["get"]["parameters"]
        if p["name"] == "after"
    )
    assert {"type": "string", "pattern": "^[0-9]{1,10}$"}.items() <= after["schema"]["anyOf"][0].items()


# --- the rules can fail: a route written the way FastAPI's defaults lead to breaks every one of them ---------


class ThingForm(BaseModel):
    seed: int | None = None


class Thing(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 1}]})  # `name` is required

    id: int
    name: str | None


class ThingPage(BaseModel):
    data: list[Thing]
    next_cursor: int | None = None


def _careless_app() -> FastAPI:
    app = FastAPI()

    @app.post(
        "/things",
        status_code=202,
        response_model=Thing,
        responses={200: {"description": "done"}, 409: {"description": "busy"}, 429: {"description": "slow"}},
    )
    async def create_thing(
        form: Annotated[ThingForm, Form()], image: UploadFile, prefer: Annotated[str | None, Header()] = None
    ) -> Thing:
        raise NotImplementedError

    @app.get(
        "/things/{thing_id}/content",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 307: {"description": "elsewhere"}},
    )
    def download_thing(thing_id: str) -> Response:
        raise NotImplementedError

    @app.get("/things", response_model=ThingPage)
    def list_things(after: int | None = None) -> ThingPage:
        raise NotImplementedError

    return app


@pytest.mark.parametrize(
    "expected",
    [
        "POST /things 409: no Problem schema",
        "POST /things 422: no Problem schema",  # FastAPI's own HTTPValidationError
        "POST /things 200: a success without a declared body",
        "POST /things 429: `Retry-After` not declared",
        "POST /things: a multipart form must be one object",
        "POST /things: a file part without `format: binary`",
        "POST /things: header parameter 'prefer' is not spelt as HTTP spells it",
        "POST /things: the 200 of `Prefer: wait` must have the schema of the 202",
        "POST /things 202: `Location` not declared",
        "GET /things/{thing_id}/content 200 image/png: no schema",
        "GET /things/{thing_id}/content 307: `Location` not declared",
        "GET /things: the `after` cursor must be a string",
        "GET /things: no 503 declared",
        "GET /things: no 405 declared",
        "schema ThingPage: `next_cursor` must be a string",
    ],
)
def test_the_rules_name_a_route_that_breaks_them(expected: str) -> None:
    violations = rule_violations(_careless_app().openapi())
    assert any(line.startswith(expected) for line in violations), "\n".join(violations)


def test_an_example_its_schema_refuses_is_named() -> None:
    _, violations = example_violations(_careless_app().openapi())
    assert any("Thing/examples/0" in line and "'name' is a required property" in line for line in violations)
