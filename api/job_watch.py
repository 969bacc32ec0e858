"""Wake requests that wait on a job (`Prefer: wait`, an event stream) the moment the job's change commits.

One per API process, on its event loop: ONE Postgres connection `LISTEN`s on `core.notify.CHANNEL` (the
worker's `pg_notify` fires when its transaction commits) and fans each notification out to the coroutines
watching that job, however many there are; no waiter holds a database connection while it waits. Commits in
this very process (a worker thread beside the API, the only channel on SQLite) arrive through
`core.notify.subscribe`. A waiter still re-reads the job now and then on its own: every `wait_poll_interval_s`
when no channel is live (SQLite with the worker in another process, the listener reconnecting), every
`wait_recheck_interval_s` as a safety net while one is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import psycopg
from sqlalchemy.engine import make_url

from core import notify
from core.settings import Settings

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 5.0


class Watch:
    """One waiter's doorbell: `await wait(timeout)` returns True when rung, False when the timeout passed."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.any_job = False  # also wake on every other job's change (a queued job's position moves then)
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._rung.wait(), timeout=max(timeout_s, 0.0))
        except TimeoutError:
            return False
        self._rung.clear()
        return True


class JobWatch:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.live = False  # the Postgres listener is connected and listening
        self._watches: set[Watch] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task[None] | None = None
        self._dsn = (
            None
            if settings.is_sqlite
            else make_url(settings.database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    @property
    def waiting(self) -> int:
        return len(self._watches)

    @property
    def poll_interval_s(self) -> float:
        """How long a waiter sleeps between its own re-reads of the job."""
        if self.live:
            return self.settings.wait_recheck_interval_s
        return self.settings.wait_poll_interval_s

    async def start(self) -> None:
        """Idempotent per event loop (the app's lifespan calls it; a watch started without one starts it)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        await self.stop()
        self._loop = loop
        notify.subscribe(self._from_any_thread)
        if self._dsn is not None:
            self._listener = loop.create_task(self._listen(), name="job-watch-listener")

    async def stop(self) -> None:
        notify.unsubscribe(self._from_any_thread)
        listener, self._listener, self._loop = self._listener, None, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        self.live = False

    @contextlib.contextmanager
    def watching(self, job_id: str) -> Iterator[Watch]:
        """Register before reading the job's state, so a change committed in between still rings."""
        watch = Watch(job_id)
        self._watches.add(watch)
        try:
            yield watch
        finally:
            self._watches.discard(watch)

    def _ring(self, job_ids: frozenset[str] | None) -> None:
        """On the loop: ring the watches of these jobs (None: all of them, e.g. after notifications may have
        been missed)."""
        for watch in list(self._watches):
            if job_ids is None or watch.any_job or watch.job_id in job_ids:
                watch.ring()

    def _from_any_thread(self, job_ids: frozenset[str]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._ring, job_ids)

    async def _listen(self) -> None:
        """Keep one LISTEN connection; reconnect with a growing pause. While it is down, waiters poll."""
        assert self._dsn is not None
        pause = 0.5
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self._dsn,
                    autocommit=True,
                    connect_timeout=max(2, round(self.settings.database_connect_timeout_s)),
                    keepalives=1,
                    keepalives_idle=30,
                    keepalives_interval=10,
                    keepalives_count=3,
                )
                async with connection:
                    await connection.execute(f"LISTEN {notify.CHANNEL}")
                    self.live, pause = True, 0.5
                    self._ring(None)  # anything that changed before LISTEN took effect
                    async for note in connection.notifies():
                        self._ring(frozenset((note.payload,)))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("job notification listener lost; waiters poll meanwhile", extra={"error": str(e)})
            finally:
                self.live = False
            self._ring(None)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX_S)
