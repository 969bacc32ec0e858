"""The service's dependencies, built once per process: what a use-case needs to do its work."""

from __future__ import annotations

from dataclasses import dataclass

from core.db import Database
from core.queue import JobQueue, make_queue
from core.settings import Settings
from core.storage import Storage, make_storage


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    queue: JobQueue


def build_services(
    settings: Settings,
    storage: Storage | None = None,
    queue: JobQueue | None = None,
    pre_ping: bool = True,
) -> Services:
    """Create it after a fork, never before (the database pool must not be shared between processes)."""
    return Services(
        settings=settings,
        db=Database(settings.database_url, pre_ping, settings.database_connect_timeout_s),
        storage=storage or make_storage(settings),
        queue=queue or make_queue(settings),
    )
