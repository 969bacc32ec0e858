"""A job changed: tell whoever waits on it, at the moment the change commits (never before, never for a
rollback).

Two ways out, both fed by `job_changed(session, job_id)` inside the transaction that changes the job:

- Postgres: `pg_notify(CHANNEL, job_id)` in that transaction; Postgres delivers it to every `LISTEN`ing
  connection when (and only if) the transaction commits. One listener per API process fans it out
  (`api.job_watch`), so a worker in another process or on another machine wakes the API's waiters.
- In-process: after the session commits, every local subscriber is called with the job ids (the only channel
  on SQLite; it reaches waiters only in the process that committed, e.g. a worker thread beside the API).

Waiters treat a notification as "read the job again": a duplicate or a spurious one costs a read, never a
wrong answer, and a missed one is caught by their slow safety re-read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "consingan_jobs"
_PENDING = "consingan_changed_jobs"  # session.info key: job ids announced in the open transaction

Subscriber = Callable[[frozenset[str]], None]
_subscribers: list[Subscriber] = []
_lock = threading.Lock()


def job_changed(session: Session, job_id: str) -> None:
    """Announce, at this transaction's commit, that `job_id` changed (state, event or progress)."""
    session.info.setdefault(_PENDING, set()).add(job_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, job_id)))


def subscribe(subscriber: Subscriber) -> None:
    """Call `subscriber(job_ids)` after every commit in this process that changed jobs. It runs on the
    committing thread: it must be quick and must not raise (hand the ids to your own loop)."""
    with _lock:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    with _lock:
        if subscriber in _subscribers:
            _subscribers.remove(subscriber)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    changed = session.info.pop(_PENDING, None)
    if not changed:
        return
    with _lock:
        subscribers = list(_subscribers)
    ids = frozenset(changed)
    for subscriber in subscribers:
        try:
            subscriber(ids)
        except Exception:  # a waiter's trouble must never fail the worker's commit path
            log.warning("job change subscriber failed", exc_info=True)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)
