"""Unavailable dependencies: which errors count as one, the bounded retry, and giving a job back."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from core import jobs
from core.ids import new_id
from core.infra import StillUnavailable, retry_unavailable, unavailable_dependency
from core.models import Job, JobEvent, JobKind, JobState, Model


def _client_error(status: int, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (OperationalError("SELECT 1", {}, Exception("connection refused")), "database"),
        (EndpointConnectionError(endpoint_url="http://s3"), "storage"),
        (ReadTimeoutError(endpoint_url="http://s3"), "storage"),
        (_client_error(503, "SlowDown"), "storage"),
        (_client_error(500, "InternalError"), "storage"),
        (RedisConnectionError("Error 111 connecting"), "broker"),
        (ConnectionRefusedError(111, "refused"), "a dependency"),
        # the job's or the request's own errors are not infrastructure
        (_client_error(404, "NoSuchKey"), None),
        (_client_error(403, "AccessDenied"), None),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), None),
        (ValueError("mask has the wrong size"), None),
        (MemoryError(), None),
    ],
)
def test_which_errors_mean_a_dependency_is_unavailable(error: BaseException, dependency: str | None) -> None:
    assert unavailable_dependency(error) == dependency


def test_a_cause_further_down_the_chain_counts() -> None:
    try:
        try:
            raise EndpointConnectionError(endpoint_url="http://s3")
        except EndpointConnectionError as e:
            raise RuntimeError("storing the snapshot failed") from e
    except RuntimeError as wrapped:
        assert unavailable_dependency(wrapped) == "storage"


def test_retry_waits_for_the_dependency_and_stops_at_the_budget() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise EndpointConnectionError(endpoint_url="http://s3")
        return "stored"

    assert retry_unavailable(flaky, 60, "put", sleep=pauses.append) == "stored"
    assert len(calls) == 4 and pauses == [0.25, 0.5, 1.0]

    def down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("refused"))

    with pytest.raises(StillUnavailable) as raised:
        retry_unavailable(down, 0.0, "claim", sleep=pauses.append)
    assert raised.value.dependency == "database"

    def broken() -> None:
        calls.append(1)
        raise ValueError("a bug is not retried")

    before = len(calls)
    with pytest.raises(ValueError):
        retry_unavailable(broken, 60, "work", sleep=pauses.append)
    assert len(calls) == before + 1


def _new_job(db: Any, owner_id: str) -> str:
    with db.transaction() as session:
        model = Model(
            id=new_id("mdl"),
            owner_id=owner_id,
            params={},
            image_width=48,
            image_height=40,
            input_key="unused",
        )
        session.add(model)
        session.flush()
        return jobs.create_job(session, model, JobKind.TRAIN).id


def _claimed(db: Any, job_id: str) -> Job:
    with db.transaction() as session:
        assert jobs.claim(session, job_id, "w1", max_attempts=1)
        job = session.get_one(Job, job_id)
        session.expunge(job)
    return job


def test_a_job_given_back_keeps_its_attempt_and_resumes(db: Any, caller: Any) -> None:
    job_id = _new_job(db, caller.owner_id)
    job = _claimed(db, job_id)  # max_attempts=1: a counted second claim would fail the job
    with db.transaction() as session:
        assert jobs.give_back(session, job, "the storage was unavailable", outage_limit_s=600) == "queued"
    with db.read() as session:
        row = session.get_one(Job, job_id)
        assert (row.state, row.attempts, row.given_back) == (JobState.QUEUED, 1, 1)
        assert row.unavailable_since is not None
        types = [e.type for e in session.query(JobEvent).filter_by(job_id=job_id)]
        assert types[-1] == "given_back"
    again = _claimed(db, job_id)  # not out of attempts: the given-back one did not count
    assert (again.attempts, jobs.counted_attempts(again)) == (2, 1)
    with db.transaction() as session:  # a stale attempt cannot give it back
        assert jobs.give_back(session, job, "late", outage_limit_s=600) is None


def test_a_job_fails_once_the_outage_outlasts_the_limit(db: Any, caller: Any) -> None:
    job_id = _new_job(db, caller.owner_id)
    job = _claimed(db, job_id)
    with db.transaction() as session:
        assert jobs.give_back(session, job, "the database was unavailable", outage_limit_s=0) == "failed"
    with db.read() as session:
        row = session.get_one(Job, job_id)
        assert row.state == JobState.FAILED
        assert "the database was unavailable" in (row.error or "") and "gave up" in (row.error or "")


def test_the_reaper_knows_when_postgres_started(db: Any) -> None:
    with db.read() as session:
        assert jobs.database_started_at(session) is not None
