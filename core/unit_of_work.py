"""One transaction and the effects that must follow its commit, owned in one place.

A transaction that inserts a job must send its task, and one that inserts a webhook delivery (the outbox row
of a state change) should send it, but only once the rows are committed: a rolled-back request must enqueue
nothing, and a task must never run before its row is visible. The unit of work watches its session's flushes
for those two kinds of rows and, after a successful commit, sends them. Nobody has to remember to.

- a new job whose task cannot be sent raises `EnqueueFailed` after the commit: the job exists but nothing
  will run it, and only the caller knows what to tell its client (core.submit undoes it, 503);
- a webhook that cannot be sent now is left to the periodic sweep (the row is the promise);
- `on_rollback(cleanup)` registers what to undo when the transaction does not commit (objects written to
  storage before the rows that point at them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.db import Database
from core.models import Job, JobKind, WebhookDelivery
from core.queue import JobQueue, QueueUnavailable
from core.vocabulary import Lane, as_lane

log = logging.getLogger(__name__)


class EnqueueFailed(QueueUnavailable):
    """The transaction committed, but the task of a job it created could not be sent."""

    def __init__(self, job_ids: list[str], cause: Exception) -> None:
        super().__init__(f"could not send the task of {', '.join(job_ids)}: {cause}")
        self.job_ids = job_ids


class UnitOfWork:
    """`with UnitOfWork(db, queue) as uow: ...; uow.commit()`. Leaving the block without a commit rolls
    back and runs the `on_rollback` cleanups. Effects follow every commit of the session, also one a helper
    made with `session.commit()`: they are sent by `commit()` or, at the latest, when the block ends."""

    def __init__(self, db: Database, queue: JobQueue) -> None:
        self.db, self.queue = db, queue
        self.session: Session = db.new_session()
        self._flushed_jobs: list[tuple[str, JobKind, Lane, int]] = []  # id, kind, lane, priority
        self._flushed_deliveries: list[str] = []
        self._committed_jobs: list[tuple[str, JobKind, Lane, int]] = []
        self._committed_deliveries: list[str] = []
        self._cleanups: list[Callable[[], Any]] = []
        event.listen(self.session, "after_flush", self._collect)
        event.listen(self.session, "after_commit", self._committed)
        event.listen(self.session, "after_soft_rollback", self._forget)

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Closing rolls back whatever was not committed; unlike rollback() it leaves loaded rows readable.
        self.session.close()
        self._run_cleanups()
        if exc is None:
            self.send_effects()
        else:
            with suppress(EnqueueFailed):  # the error in flight says more; the reaper re-sends
                self.send_effects()

    def on_rollback(self, cleanup: Callable[[], Any]) -> None:
        """Run `cleanup` if the current transaction ends without committing (or its commit fails)."""
        self._cleanups.append(cleanup)

    def commit(self) -> None:
        """Commit, then send the tasks of new jobs and the new webhook deliveries."""
        try:
            self.session.commit()
        except BaseException:
            self.rollback()
            raise
        self.send_effects()

    def rollback(self) -> None:
        self.session.rollback()
        self._run_cleanups()

    def _run_cleanups(self) -> None:
        cleanups, self._cleanups = self._cleanups, []
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception:  # a leftover object is swept later; the original error matters more
                log.warning("cleanup after rollback failed", exc_info=True)

    def send_effects(self) -> None:
        """Send what committed transactions created. Raises EnqueueFailed for jobs whose task did not go."""
        jobs, deliveries = self._committed_jobs, self._committed_deliveries
        self._committed_jobs, self._committed_deliveries = [], []
        for delivery_id in deliveries:
            with suppress(QueueUnavailable):  # the outbox sweep sends it later
                self.queue.send_webhook(delivery_id)
        failed: list[str] = []
        cause: Exception | None = None
        for job_id, kind, lane, priority in jobs:
            try:
                self.queue.send_job(job_id, kind, lane, priority=priority)
            except QueueUnavailable as e:
                failed.append(job_id)
                cause = e
        if failed:
            assert cause is not None
            raise EnqueueFailed(failed, cause)

    def _collect(self, session: Session, _flush_context: Any) -> None:
        # after_flush still sees the flushed objects as new (SQLAlchemy's documented pre-flush view)
        for row in session.new:
            if isinstance(row, Job):
                lane = as_lane(row.lane)
                self._flushed_jobs.append((row.id, JobKind(row.kind), lane, row.priority or 0))
            elif isinstance(row, WebhookDelivery):
                self._flushed_deliveries.append(row.id)

    def _committed(self, _session: Session) -> None:
        self._committed_jobs += self._flushed_jobs
        self._committed_deliveries += self._flushed_deliveries
        self._flushed_jobs, self._flushed_deliveries, self._cleanups = [], [], []

    def _forget(self, _session: Session, _previous_transaction: Any) -> None:
        self._flushed_jobs, self._flushed_deliveries = [], []
