"""Queue producer. Tasks are sent by NAME through a bare Celery app, so the API never imports worker code.

In embedded mode nothing is sent: the embedded worker polls the database for queued jobs and due webhooks.
Always send after the rows are committed: a rolled-back request must enqueue nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Protocol

from celery import Celery
from kombu import Exchange, Queue

from core.fair_share import MAX_PRIORITY
from core.models import JobKind
from core.settings import Settings

log = logging.getLogger(__name__)

TASK_FOR_KIND = {kind: f"consingan.{kind.value}" for kind in JobKind}
TASK_DELIVER_WEBHOOK = "consingan.deliver_webhook"
TASK_DISPATCH_WEBHOOKS = "consingan.dispatch_webhooks"
# Periodic housekeeping (Celery beat), routed to the light webhooks queue: never behind a GPU job.
TASK_REAP_STALE_JOBS = "consingan.reap_stale_jobs"
TASK_CLEANUP = "consingan.cleanup"
# kombu's Redis transport keeps one list per priority step and pops the lowest step first; one step per
# fair-share priority (core.fair_share), so a priority is never rounded into a neighbour's step.
PRIORITY_STEPS = list(range(MAX_PRIORITY + 1))
PRIORITY_SEP = "\x06\x16"  # kombu's separator between a queue's name and its priority step


class QueueUnavailable(RuntimeError):
    pass


class JobQueue(Protocol):
    def send_job(self, job_id: str, kind: JobKind, priority: int = 0) -> None:
        """`priority`: the job's fair-share priority (core.fair_share); 0 is served first."""
        ...

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
        # A broker that does not answer costs seconds, not minutes: the API answers 503, the worker retries.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "socket_connect_timeout": settings.broker_connect_timeout_s,
            "priority_steps": PRIORITY_STEPS,
        },
        broker_connection_timeout=settings.broker_connect_timeout_s,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.gpu_queue,
    )


class CeleryQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = Celery("consingan-producer", set_as_current=False)
        configure_celery(self.app, settings)

    def _send(self, name: str, arg: str, queue: str, priority: int = 0) -> None:
        try:
            self.app.send_task(
                name,
                args=[arg],
                queue=queue,
                priority=priority,
                retry=True,
                retry_policy={"max_retries": 3},
            )
        except Exception as e:  # kombu raises several types for an unreachable broker
            raise QueueUnavailable(f"could not send {name}: {e}") from e

    def send_job(self, job_id: str, kind: JobKind, priority: int = 0) -> None:
        priority = max(0, min(priority, MAX_PRIORITY))
        self._send(TASK_FOR_KIND[kind], job_id, self.settings.gpu_queue, priority)
        log.info(
            "job sent",
            extra={
                "job_id": job_id,
                "kind": kind.value,
                "queue": self.settings.gpu_queue,
                "priority": priority,
            },
        )

    def send_webhook(self, delivery_id: str) -> None:
        self._send(TASK_DELIVER_WEBHOOK, delivery_id, self.settings.webhooks_queue)

    def check(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def pending_job_ids(self, reserved_within_s: float) -> set[str] | None:
        """Job ids whose task message is alive in the broker: waiting in the GPU queue, or reserved by a worker
        less than `reserved_within_s` ago. A worker killed with SIGKILL strands the message it had reserved in
        kombu's `unacked` hash until the visibility timeout (days); a job still `queued` whose id is not in
        this set lost its message and must be sent again. None when the broker is not Redis."""
        if not self.settings.broker_url.startswith(("redis://", "rediss://")):
            return None
        import redis

        client = redis.Redis.from_url(self.settings.broker_url, socket_timeout=5)
        try:
            ids = {
                _job_id_of(raw)
                for name in priority_lists(self.settings.gpu_queue)
                for raw in client.lrange(name, 0, -1)
            }
            fresh: list[Any] = list(
                client.zrangebyscore("unacked_index", time.time() - reserved_within_s, "+inf")
            )
            for raw in client.hmget("unacked", fresh) if fresh else []:
                if raw is not None:
                    entry = json.loads(raw)
                    if isinstance(entry, list) and entry and entry[-1] == self.settings.gpu_queue:
                        ids.add(_job_id_of(json.dumps(entry[0])))
        finally:
            client.close()
        ids.discard(None)
        return {i for i in ids if i}


def priority_lists(queue: str) -> list[str]:
    """The Redis lists kombu keeps a queue's messages in, one per priority step, served first to last."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


def _job_id_of(raw: bytes | str) -> str | None:
    """The first argument of a Celery (protocol 2) message as kombu's Redis transport stores it."""
    try:
        message: dict[str, Any] = json.loads(raw)
        body: Any = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


class EmbeddedQueue:
    """Sends nothing: the embedded worker finds queued jobs and due webhooks in the database."""

    def send_job(self, job_id: str, kind: JobKind, priority: int = 0) -> None:
        log.info("job queued for the embedded worker", extra={"job_id": job_id, "kind": kind.value})

    def send_webhook(self, delivery_id: str) -> None:
        pass

    def check(self) -> None:
        pass


def make_queue(settings: Settings) -> JobQueue:
    return CeleryQueue(settings) if settings.queue_mode == "celery" else EmbeddedQueue()
