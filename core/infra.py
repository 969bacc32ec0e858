"""Which errors mean "a dependency is unavailable", and retrying them for a bounded time.

The database, the broker and the object storage blink: a restart, a failover, a dropped connection, a network
that loses packets for a while. Such an error says nothing about the job or the request that met it, so it must
not fail the job (the worker retries, then gives the job back to `queued`) and must not be a 500 (the API says
503 with Retry-After). Everything else (bad input, a bug, out of memory, a 4xx from storage) is the caller's own
failure and is NOT classified here.

`unavailable_dependency(exc)` walks the exception and its causes and names the dependency ("database",
"storage", "broker") or returns None. `retry_unavailable(fn, budget_s)` calls `fn` until it works, retrying
only such errors, with growing pauses, for at most `budget_s` seconds; then it raises `StillUnavailable`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

DATABASE, STORAGE, BROKER = "database", "storage", "broker"
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 2.0  # short: recovery must be seen within seconds of the dependency coming back

# OS-level errors of a connection (refused, reset, broken, timed out): the dependency is named by the caller.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.timeout)


class StillUnavailable(Exception):
    """A dependency stayed unavailable for the whole retry budget."""

    def __init__(self, dependency: str, seconds: float, cause: BaseException) -> None:
        super().__init__(f"{dependency} unavailable for {seconds:.0f} s: {type(cause).__name__}: {cause}")
        self.dependency, self.seconds, self.cause = dependency, seconds, cause


def _database(exc: BaseException) -> bool:
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DBAPIError):
        # OperationalError: the server is gone, refused, restarting, out of connections, a deadlock to retry.
        # InterfaceError: the driver's connection is closed. Any DBAPIError the pool saw as a disconnect.
        return isinstance(exc, sa.OperationalError | sa.InterfaceError) or exc.connection_invalidated
    # DisconnectionError: a dead pooled connection; TimeoutError: no connection free in the pool in time.
    return isinstance(exc, sa.DisconnectionError | sa.TimeoutError)


def _storage(exc: BaseException) -> bool:
    from botocore import exceptions as bc

    if isinstance(exc, bc.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return int(status or 0) >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError")
    return isinstance(
        exc,
        bc.EndpointConnectionError  # refused, unreachable (ConnectTimeoutError is one)
        | bc.ConnectionClosedError
        | bc.ReadTimeoutError
        | bc.ConnectTimeoutError
        | bc.ResponseStreamingError,
    )


def _broker(exc: BaseException) -> bool:
    from kombu import exceptions as kombu_errors
    from redis import exceptions as redis_errors

    from core.queue import QueueUnavailable

    return isinstance(
        exc,
        QueueUnavailable
        | kombu_errors.OperationalError
        | redis_errors.ConnectionError
        | redis_errors.TimeoutError
        | redis_errors.BusyLoadingError,
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def unavailable_dependency(exc: BaseException) -> str | None:
    """ "database", "storage" or "broker" when `exc` (or an error that caused it) means that dependency is
    unavailable; None for everything else."""
    connection_error = False
    for error in _chain(exc):
        if isinstance(error, StillUnavailable):
            return error.dependency
        if _database(error):
            return DATABASE
        if _storage(error):
            return STORAGE
        if _broker(error):
            return BROKER
        connection_error = connection_error or isinstance(error, _CONNECTION_ERRORS)
    return "a dependency" if connection_error else None


def is_unavailable(exc: BaseException) -> bool:
    return unavailable_dependency(exc) is not None


def error_roots() -> tuple[type[Exception], ...]:
    """The base classes of every error `unavailable_dependency` may recognise (for exception handlers)."""
    from botocore import exceptions as bc
    from kombu.exceptions import KombuError
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from core.queue import QueueUnavailable

    return (
        StillUnavailable,
        SQLAlchemyError,
        bc.BotoCoreError,
        bc.ClientError,
        KombuError,
        RedisError,
        QueueUnavailable,
        OSError,
    )


def backoff() -> Iterator[float]:
    """Pauses between tries: 0.25, 0.5, 1, 2, 2, ... seconds."""
    pause = BACKOFF_FIRST_S
    while True:
        yield pause
        pause = min(pause * 2, BACKOFF_MAX_S)


def retry_unavailable(
    fn: Callable[[], T],
    budget_s: float,
    what: str,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """`fn()`, retried while it fails because a dependency is unavailable, for at most `budget_s` seconds.
    Any other error goes through at once. Raises StillUnavailable when the budget is spent."""
    started = time.monotonic()
    pauses = backoff()
    tries = 0
    while True:
        try:
            result = fn()
        except Exception as e:
            dependency = unavailable_dependency(e)
            if dependency is None:
                raise
            if isinstance(e, StillUnavailable):  # an inner retry already spent its budget
                raise
            tries += 1
            waited = time.monotonic() - started
            if waited >= budget_s:
                raise StillUnavailable(dependency, waited, e) from e
            if tries == 1 or tries % 10 == 0:
                log.warning(
                    "dependency unavailable; retrying",
                    extra={"what": what, "dependency": dependency, "tries": tries, "error": str(e)[:300]},
                )
            sleep(min(next(pauses), max(budget_s - waited, 0.0)))
            continue
        if tries:
            log.info(
                "dependency back",
                extra={"what": what, "tries": tries, "seconds": round(time.monotonic() - started, 2)},
            )
        return result
