"""The Celery app of the GPU workers: `celery -A worker.celery_app worker -Q gpu` (the long lane) and, with
CONSINGAN_WORKER_LANE=interactive, `... worker -Q gpu-interactive` (the interactive lane; docs/lanes.md).

Settings come from the environment (CONSINGAN_*) when this module is imported by the Celery CLI.
Choices and why (see docs/service-notes.md): JSON only (pickle over a broker is RCE); acks_late +
reject_on_worker_lost (a killed worker's job goes back); prefetch 1 (a worker must not hoard GPU jobs);
in the long lane one fresh process per task (GPU memory is returned), niced so the interactive lane on the
same CPU goes first; in the interactive lane one persistent process that keeps models loaded; a visibility
timeout above the longest job; no result backend (state lives in the database).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery, bootsteps
from celery.signals import setup_logging, worker_init, worker_process_init, worker_process_shutdown
from celery.worker.consumer import Consumer

from core import maintenance
from core.logs import configure_logging
from core.queue import (
    TASK_CLEANUP,
    TASK_DELIVER_WEBHOOK,
    TASK_DISPATCH_WEBHOOKS,
    TASK_FOR_KIND,
    TASK_REAP_STALE_JOBS,
    configure_celery,
    lane_queue,
)
from core.settings import Settings, get_settings
from core.vocabulary import lane_of
from worker import lanes, metrics
from worker.runtime import build_context

log = logging.getLogger(__name__)


def make_celery(settings: Settings) -> Celery:
    app = Celery("consingan", include=["worker.tasks"])
    configure_celery(app, settings)
    # Producers name the queue of each job's lane (core.queue.CeleryQueue.send_job); these routes are only
    # the fallback for a task sent without one: the lane of its kind with default params.
    gpu_routes = {
        name: {"queue": lane_queue(settings, lane_of(kind.value, {}))} for kind, name in TASK_FOR_KIND.items()
    }
    webhook_routes = {
        name: {"queue": settings.webhooks_queue}
        for name in (TASK_DELIVER_WEBHOOK, TASK_DISPATCH_WEBHOOKS, TASK_REAP_STALE_JOBS, TASK_CLEANUP)
    }
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The long lane: a fresh process per job. The interactive lane: one warm process (its model cache).
        worker_max_tasks_per_child=1 if settings.worker_lane == "long" else None,
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=max(settings.task_time_limit_s - 60, 1),
        task_routes={**gpu_routes, **webhook_routes},
        worker_hijack_root_logger=False,
        # A lost broker is retried for ever (the default gives up after 100 tries), at short intervals.
        broker_connection_max_retries=None,
        worker_consumer="worker.celery_app:QuickReconnectConsumer",
        worker_send_task_events=False,
        # Celery beat (`celery -A worker.celery_app beat`) sends due webhook retries; direct sends cover the first try.
        # The crash reaper re-queues jobs whose worker died; cleanup removes orphaned objects and old records.
        beat_schedule={
            "dispatch-due-webhooks": {
                "task": TASK_DISPATCH_WEBHOOKS,
                "schedule": settings.webhook_sweep_interval_s,
                "options": {"queue": settings.webhooks_queue, "expires": settings.webhook_sweep_interval_s},
            },
            "reap-stale-jobs": {
                "task": TASK_REAP_STALE_JOBS,
                "schedule": settings.reaper_interval_s,
                "options": {"queue": settings.webhooks_queue, "expires": settings.reaper_interval_s},
            },
            "cleanup": {
                "task": TASK_CLEANUP,
                "schedule": settings.cleanup_interval_s,
                "options": {"queue": settings.webhooks_queue, "expires": settings.cleanup_interval_s},
            },
        },
    )
    return app


class QuickReconnectConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer reconnects to a lost broker after pauses of 2, 4, 6, ... up to 30 s: a worker could
    sit idle for half a minute after Redis came back. Here the pauses stay under `broker_reconnect_max_s`."""

    def ensure_connected(self, conn: Any) -> Any:
        ensure = conn.ensure_connection
        pause = settings.broker_reconnect_max_s

        def quickly(*args: Any, **kwargs: Any) -> Any:
            kwargs.update(interval_start=pause / 2, interval_step=pause / 2, interval_max=pause)
            return ensure(*args, **kwargs)

        conn.ensure_connection = quickly
        return super().ensure_connected(conn)


class RecoverOnConnect(bootsteps.StartStopStep):  # type: ignore[misc]
    """Each time the worker's consumer (re)connects to the broker, at start or after the broker was lost,
    reap and re-send every queued job without a live message at once (a Redis restarted empty lost them
    all). In a thread of the main process, with a throwaway context: no connection is inherited by the pool."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:
        threading.Thread(target=_recover, name="recover-on-connect", daemon=True).start()


def _recover() -> None:
    ctx = build_context(settings)
    try:
        maintenance.recover_after_connect(ctx.db, ctx.queue, settings)
    except Exception:
        log.exception("recovery after connecting to the broker failed; the periodic reaper retries")
    finally:
        ctx.db.dispose()


settings = get_settings()
app = make_celery(settings)
app.steps["consumer"].add(RecoverOnConnect)


@setup_logging.connect
def _logging(**_kwargs: Any) -> None:
    configure_logging(settings.log_format, settings.log_level)


@worker_init.connect
def _serve_metrics(**_kwargs: Any) -> None:
    metrics.serve(settings)  # main process, before the pool forks; off unless CONSINGAN_WORKER_METRICS_PORT


@worker_process_init.connect
def _share_the_cpu(**_kwargs: Any) -> None:
    """In each pool process, before its first task: the long lane yields the CPU to the interactive one."""
    lanes.share_the_cpu(settings, settings.worker_lane)


@worker_process_shutdown.connect
def _process_exited(pid: int | None = None, **_kwargs: Any) -> None:
    metrics.process_exited(pid or os.getpid())
