"""Prometheus metrics of the API process, served at `GET /metrics`.

Per request: a counter and a latency histogram labelled by method, route TEMPLATE (`/v1/models/{model_id}`,
never the raw path: ids would explode the series) and status. Per scrape: jobs by state and kind, and webhook
deliveries by state, counted in the database (so every API replica reports the same fleet-wide numbers).
Each app gets its own registry, so tests can build many apps in one process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.job_watch import JobWatch
from core.db import Database
from core.models import Job, WebhookDelivery

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class DatabaseCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("consingan_jobs", "jobs by state and kind", labels=["state", "kind"])
        deliveries = GaugeMetricFamily(
            "consingan_webhook_deliveries", "webhook deliveries by state", labels=["state"]
        )
        with self.db.read() as session:
            for state, kind, count in session.execute(
                select(Job.state, Job.kind, func.count()).group_by(Job.state, Job.kind)
            ):
                jobs.add_metric([state, kind], count)
            for state, count in session.execute(
                select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
            ):
                deliveries.add_metric([state], count)
        yield jobs
        yield deliveries


class JobWatchCollector(Collector):
    """The wake of waiting requests (api.job_watch): how many wait now, and whether the notification
    listener is connected (0: they fall back to re-reading their jobs)."""

    def __init__(self, watch: JobWatch) -> None:
        self.watch = watch

    def collect(self) -> Iterator[Metric]:
        waiters = GaugeMetricFamily(
            "consingan_job_waiters", "requests waiting on a job now (Prefer: wait, event streams)"
        )
        waiters.add_metric([], self.watch.waiting)
        listener = GaugeMetricFamily(
            "consingan_job_listener_up", "1 while the Postgres LISTEN connection of this process is live"
        )
        listener.add_metric([], 1 if self.watch.live else 0)
        yield waiters
        yield listener


class ApiMetrics:
    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "consingan_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "consingan_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(db))


class MetricsMiddleware:
    """Pure ASGI: times every HTTP request and labels it with the route that matched (after routing)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
