"""SQLAlchemy engine, sessions and the declarative base shared by api/ and worker/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names so Alembic migrations are identical on SQLite and Postgres and reviewable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes; busy_timeout waits for a lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _create_private(path: Path) -> None:
    """A new SQLite file is readable by its owner only (0600, as the stored objects are: it holds the API keys'
    hashes and the webhook secrets); SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def make_engine(url: str, pre_ping: bool = True) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _create_private(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre_ping: a worker holds its pool for hours of training; a connection dropped meanwhile is replaced.
    # The API checks out connections many times a second: a ping per checkout would double its round trips;
    # there a dropped connection fails one request and invalidates the pool, and recycling bounds their age.
    if pre_ping:
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    return create_engine(url, pool_pre_ping=False, pool_recycle=1800, pool_size=10, max_overflow=20)


class Database:
    """One engine and one session factory per process (create it after a fork, never before).

    Ways in, named for what they do: `read()` is a session that never commits (reads, or a caller that
    commits itself), `transaction()` commits on success and rolls back on error, `autocommit_read()` is the
    API's per-request session for reads. Writes whose commit must be
    followed by effects (sending a new job's task, a webhook) go through `core.unit_of_work.UnitOfWork`.
    """

    def __init__(self, url: str, pre_ping: bool = True) -> None:
        self.engine = make_engine(url, pre_ping)
        self.new_session = sessionmaker(self.engine, expire_on_commit=False)
        # The same pool; each statement is its own transaction, so a read is one round trip (no BEGIN, and
        # no COMMIT or ROLLBACK to give the connection back).
        autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.new_autocommit_session = sessionmaker(autocommit, expire_on_commit=False)

    def read(self) -> Session:
        """A session that commits nothing by itself: `with db.read() as session: ...`."""
        return self.new_session()

    def autocommit_read(self) -> Session:
        """A session for a request's reads only: each SELECT sees the latest commits on its own (no snapshot
        across statements), at one round trip. Never write with it: every statement commits at once."""
        return self.new_autocommit_session()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short write: commits on success, rolls back on error."""
        with self.new_session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
