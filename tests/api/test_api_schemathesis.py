"""Schemathesis over the OpenAPI document: every operation, authenticated, with generated valid (positive)
and invalid (negative) inputs. About half the cases aim at a real model, job and sample of the caller (ids
substituted, real images in the uploads), so the success paths are exercised too, not only 404/422.
No 5xx, and every response matches its documented status code, content type, headers and schema."""

from __future__ import annotations

import collections
import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core import jobs
from core.ids import new_id
from core.models import JobKind, Model, Sample, utcnow
from core.storage import checkpoint_key, input_key, sample_key
from tests.service_fixtures import scene_image

EXAMPLES = int(os.environ.get("CONSINGAN_SCHEMATHESIS_EXAMPLES", "40"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PNG = scene_image()


def _seed(db: Any, storage: Any, owner_id: str) -> dict[str, str]:
    """A trained model of the caller (succeeded train job, checkpoint key, one preview), and a sample job."""
    model_id, sample_id = new_id("mdl"), new_id("smp")
    storage.put(input_key(model_id), PNG, "image/png")
    storage.put(sample_key(model_id, sample_id), PNG, "image/png")
    with db.transaction() as session:
        model = Model(
            id=model_id, owner_id=owner_id, params={"preset": "quick", "mode": "harmonization"},
            train_config={"train_stages": 2, "mode": "harmonization"}, image_width=48, image_height=40,
            input_key=input_key(model_id), checkpoint_key=checkpoint_key(model_id),
        )  # fmt: skip
        session.add(model)
        session.flush()
        train = jobs.create_job(session, model, JobKind.TRAIN)
        assert jobs.claim(session, train.id, "w", max_attempts=3) and jobs.succeed(session, train)
        session.add(
            Sample(
                id=sample_id,
                owner_id=owner_id,
                model_id=model_id,
                job_id=train.id,
                key=sample_key(model_id, sample_id),
                width=48,
                height=40,
                size_bytes=len(PNG),
                is_preview=True,
                created_at=utcnow(),
            )
        )
        sample_job = jobs.create_job(session, model, JobKind.SAMPLE, {"n": 1})
        return {"model_id": model_id, "job_id": sample_job.id, "sample_id": sample_id}


def _aim_at_real_resources(case: Any, ids: dict[str, str]) -> None:
    for name in case.path_parameters or {}:
        if name in ids:
            case.path_parameters[name] = ids[name]
    if isinstance(case.body, dict):
        for field in ("image", "naive", "mask"):
            if field in case.body:
                case.body[field] = PNG


def test_every_operation_conforms_to_its_schema(make_client: Any, caller: Any, db: Any, storage: Any) -> None:
    """One Hypothesis run per operation and mode (the pytest plugin's fixture loader does not support this
    pytest); every failure is collected, then reported together."""
    # `Prefer: wait=60` is the header's documented example: capped, so a job nobody runs does not hold a case
    # for a minute (the recording queue runs nothing).
    client = make_client(max_queued_jobs_per_owner=1000, prefer_wait_max_s=0.5)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    ids = _seed(db, storage, caller.owner_id)
    failures: list[str] = []
    statuses: collections.Counter[int] = collections.Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def run(case: Any, real: bool) -> None:
                if real and case.method.upper() != "DELETE":  # the seeded model must survive
                    _aim_at_real_resources(case, ids)
                response = case.call_and_validate(
                    headers={**(case.headers or {}), **caller.headers}, checks=CHECKS
                )
                statuses[response.status_code // 100] += 1

            try:
                run()
            except Unsatisfiable:
                continue  # no invalid input exists (an operation without parameters)
            except (Exception, BaseExceptionGroup) as e:
                failures.append(f"{operation.label} ({mode.value}): {e}")
    print(f"\nschemathesis: {operations} operations, responses by class: {dict(sorted(statuses.items()))}")
    assert operations >= 10 and statuses[2] > 0 and statuses[5] == 0
    assert not failures, "\n\n".join(failures)
