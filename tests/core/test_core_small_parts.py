"""Small pure parts: ids, settings checks, structured logs, the Prefer header."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from api.waiting import requested_wait
from core.ids import is_valid_id, new_id
from core.logs import JsonFormatter
from core.settings import get_settings


def test_ids_are_time_ordered_and_safe_in_keys() -> None:
    ids = [new_id("mdl") for _ in range(50)]
    assert all(is_valid_id(i) for i in ids)
    assert ids[0][:16] <= ids[-1][:16]  # the millisecond part never goes back
    assert not is_valid_id("mdl_../../etc") and not is_valid_id("MDL_" + "0" * 28)


def test_ids_made_in_the_same_millisecond_keep_their_creation_order() -> None:
    ids = [new_id("job") for _ in range(5000)]  # thousands share a millisecond
    assert len({i[4:16] for i in ids}) < len(ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_settings_refuse_a_visibility_timeout_shorter_than_a_job() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout_s"):
        get_settings(visibility_timeout_s=3600, task_time_limit_s=7200)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSINGAN_WEBHOOK_SCHEDULE_S", "[0, 1, 2]")
    monkeypatch.setenv("CONSINGAN_STORAGE_BACKEND", "s3")
    settings = get_settings()
    assert settings.webhook_schedule_s == (0, 1, 2) and settings.storage_backend == "s3"


def test_json_logs_carry_the_ids() -> None:
    record = logging.LogRecord("worker.pipeline", logging.INFO, __file__, 1, "job started", None, None)
    record.job_id, record.model_id = "job_1", "mdl_1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "job started" and entry["job_id"] == "job_1" and entry["model_id"] == "mdl_1"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 0.0),
        ("", 0.0),
        ("wait=5", 5.0),
        ("respond-async, wait=2.5", 2.5),
        ("wait=3600", 60.0),
        ("waits", 0.0),
    ],
)
def test_prefer_wait_is_parsed_and_capped(header: str | None, seconds: float) -> None:
    assert requested_wait(header, cap_s=60.0) == seconds
