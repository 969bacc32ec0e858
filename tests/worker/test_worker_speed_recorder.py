"""The pace a training records (worker.runtime.SpeedRecorder) is a measurement: a write that fails, for any
reason, is logged and the training goes on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

import engine
from core import estimates
from worker.runtime import SpeedRecorder


class RefusingDatabase:
    """A database whose every transaction fails with a constraint error (not an outage)."""

    def __init__(self) -> None:
        self.attempts = 0

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        self.attempts += 1
        raise IntegrityError("INSERT INTO iteration_speeds", {}, Exception("a check constraint failed"))
        yield  # pragma: no cover


def test_a_failed_pace_write_is_logged_and_the_training_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    phase = estimates.Phase(
        kind=estimates.STAGE, index=0, height=8, width=8, pixels=64, channels=32, iterations=4, seconds=1.0
    )
    plan = estimates.TrainingPlan(device="cpu", basis="prior", measurements=0, phases=(phase,))
    database = RefusingDatabase()
    recorder = SpeedRecorder(SimpleNamespace(db=database), plan)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="worker.runtime"):
        for iteration in (1, 2, 3, 4):
            recorder.see(engine.Progress(stage=0, num_stages=1, iteration=iteration, iters_per_stage=4))
    assert database.attempts == 1  # tried once, at the stage's end
    assert any("pace not recorded" in record.getMessage() for record in caplog.records)
