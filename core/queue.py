"""Queue producer. Tasks are sent by NAME through a bare Celery app, so the API never imports worker code.

In embedded mode nothing is sent: the embedded worker polls the database for queued jobs and due webhooks.
Always send after the rows are committed: a rolled-back request must enqueue nothing.
"""

from __future__ import annotations

import logging
from typing import Protocol

from celery import Celery
from kombu import Exchange, Queue

from core.models import JobKind
from core.settings import Settings

log = logging.getLogger(__name__)

TASK_FOR_KIND = {
    JobKind.TRAIN: "consingan.train",
    JobKind.SAMPLE: "consingan.sample",
    JobKind.HARMONIZE: "consingan.harmonize",
}
TASK_DELIVER_WEBHOOK = "consingan.deliver_webhook"
TASK_DISPATCH_WEBHOOKS = "consingan.dispatch_webhooks"
# Periodic housekeeping (Celery beat), routed to the light webhooks queue: never behind a GPU job.
TASK_REAP_STALE_JOBS = "consingan.reap_stale_jobs"
TASK_CLEANUP = "consingan.cleanup"


class QueueUnavailable(RuntimeError):
    pass


class JobQueue(Protocol):
    def send_job(self, job_id: str, kind: JobKind) -> None: ...
    def send_webhook(self, delivery_id: str) -> None: ...
    def check(self) -> None:
        """Raise if the broker cannot be reached (readiness probe)."""
        ...


def task_queues(settings: Settings) -> tuple[Queue, Queue]:
    """Each queue with its own direct exchange and routing key, declared the same way by producer and worker.
    Left implicit, the worker binds every queue to the default queue's exchange and key; Celery still publishes
    by queue name, but anything routing through that exchange would reach both queues."""
    return tuple(  # type: ignore[return-value]
        Queue(name, Exchange(name, type="direct"), routing_key=name)
        for name in (settings.gpu_queue, settings.webhooks_queue)
    )


def configure_celery(app: Celery, settings: Settings) -> None:
    """Settings shared by the producer and the worker (pitfalls: see docs/service-notes.md)."""
    app.conf.update(
        task_queues=task_queues(settings),
        broker_url=settings.broker_url,
        task_serializer="json",
        accept_content=["json"],  # pickle over a reachable broker is remote code execution
        result_serializer="json",
        result_backend=None,  # state lives in the database
        task_ignore_result=True,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.gpu_queue,
    )


class CeleryQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = Celery("consingan-producer", set_as_current=False)
        configure_celery(self.app, settings)

    def _send(self, name: str, arg: str, queue: str) -> None:
        try:
            self.app.send_task(name, args=[arg], queue=queue, retry=True, retry_policy={"max_retries": 3})
        except Exception as e:  # kombu raises several types for an unreachable broker
            raise QueueUnavailable(f"could not send {name}: {e}") from e

    def send_job(self, job_id: str, kind: JobKind) -> None:
        self._send(TASK_FOR_KIND[kind], job_id, self.settings.gpu_queue)
        log.info("job sent", extra={"job_id": job_id, "kind": kind.value, "queue": self.settings.gpu_queue})

    def send_webhook(self, delivery_id: str) -> None:
        self._send(TASK_DELIVER_WEBHOOK, delivery_id, self.settings.webhooks_queue)

    def check(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)


class EmbeddedQueue:
    """Sends nothing: the embedded worker finds queued jobs and due webhooks in the database."""

    def send_job(self, job_id: str, kind: JobKind) -> None:
        log.info("job queued for the embedded worker", extra={"job_id": job_id, "kind": kind.value})

    def send_webhook(self, delivery_id: str) -> None:
        pass

    def check(self) -> None:
        pass


def make_queue(settings: Settings) -> JobQueue:
    return CeleryQueue(settings) if settings.queue_mode == "celery" else EmbeddedQueue()
