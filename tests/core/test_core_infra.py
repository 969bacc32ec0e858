"""Unavailable dependencies: which errors count as one, the bounded retry, and giving a job back."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from core import jobs
from core.db import Database
from core.ids import new_id
from core.infra import StillUnavailable, retry_unavailable, unavailable_dependency
from core.models import Job, JobEvent, JobKind, JobState, Model
from core.storage import ObjectNotFound, RetryingStorage


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
        types = [e.type for e in session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.id)]
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


class _BlinkingStorage:
    """Refuses `refusals` calls, then answers like a storage holding one 3-byte object."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.calls = refusals, 0

    def size(self, key: str) -> int:
        self.calls += 1
        if self.calls <= self.refusals:
            raise EndpointConnectionError(endpoint_url="http://s3")
        if key != "models/mdl_0123456789abcdef0123456789ab/input.png":
            raise ObjectNotFound(key)
        return 3


def test_the_retrying_storage_retries_size_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.infra.time.sleep", lambda _s: None)
    inner = _BlinkingStorage(refusals=2)
    retrying = RetryingStorage(inner, budget_s=60)  # type: ignore[arg-type]
    assert retrying.size("models/mdl_0123456789abcdef0123456789ab/input.png") == 3
    assert inner.calls == 3
    with pytest.raises(ObjectNotFound):  # a missing object is an answer, not an outage: no retry
        retrying.size("models/mdl_0123456789abcdef0123456789ab/checkpoint.safetensors")
    assert inner.calls == 4


def test_request_sessions_replace_a_connection_the_server_closed(db: Any, settings: Any) -> None:
    """`autocommit_read()` (the API's per-request session) shares the pool's checkout check: a pooled
    connection that Postgres closed (a restart) is replaced before use, without a ping, so the first request
    after a restart succeeds; and it connects with the bounded connect timeout."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("Postgres only")
    api_db = Database(settings.database_url, pre_ping=False, connect_timeout_s=3)  # as the API builds it
    try:
        with api_db.autocommit_read() as session:
            pid = session.scalar(select(func.pg_backend_pid()))
            raw = session.connection().connection.dbapi_connection
            assert raw is not None
            assert raw.info.get_parameters().get("connect_timeout") == "3"
        with db.transaction() as session:
            assert session.scalar(select(func.pg_terminate_backend(pid)))
        time.sleep(0.2)  # the server's goodbye reaches the pooled socket
        with api_db.autocommit_read() as session:
            assert session.scalar(select(func.pg_backend_pid())) != pid
    finally:
        api_db.dispose()
