"""Prometheus metrics of a Celery worker: job durations, queue wait (by kind and by lane), jobs by outcome,
the interactive lane's model cache, peak GPU memory.

A GPU worker runs each task in a fresh pool process (`worker_max_tasks_per_child=1`), so the numbers are
recorded in prometheus_client's multiprocess mode: every process writes to files under `worker_metrics_dir`,
and the worker's main process serves their sum on `worker_metrics_port` (0 = off; compose sets 9101).
Wiring (worker/celery_app.py): `serve()` on `worker_init` (main process, before the pool forks), and
`process_exited()` on `worker_process_shutdown` (live gauges of a finished process are dropped).
In the embedded runner (no port) the same calls record into the in-process default registry.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from types import SimpleNamespace
from typing import Any

from core.settings import Settings

log = logging.getLogger(__name__)

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400)
# per lane: the interactive lane's answers are sub-second, so its buckets start at 10 ms
LANE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)


def serve(settings: Settings) -> bool:
    """Start the HTTP endpoint in this (main) process. Must run before the pool forks."""
    if settings.worker_metrics_port <= 0:
        return False
    directory = settings.worker_metrics_dir / str(settings.worker_metrics_port)
    shutil.rmtree(directory, ignore_errors=True)  # files of a previous run's dead processes
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server, values

    # The value class is chosen when prometheus_client is imported; make sure it is the file-backed one.
    values.ValueClass = values.get_value_class()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_addr, registry=registry)
    log.info("worker metrics served", extra={"port": settings.worker_metrics_port, "dir": str(directory)})
    return True


def process_exited(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


@functools.cache
def _metrics() -> Any:
    """Created on first use, in the process that records (a pool child, after the fork)."""
    from prometheus_client import Counter, Gauge, Histogram

    return SimpleNamespace(
        jobs=Counter(
            "consingan_worker_jobs", "jobs run by this worker, by kind and outcome", ["kind", "state"]
        ),
        duration=Histogram(
            "consingan_worker_job_duration_seconds",
            "wall time of one job attempt, claim to final state",
            ["kind", "state"],
            buckets=DURATION_BUCKETS,
        ),
        wait=Histogram(
            "consingan_worker_job_queue_wait_seconds",
            "from the job's creation to this attempt's claim",
            ["kind"],
            buckets=WAIT_BUCKETS,
        ),
        lane_wait=Histogram(
            "consingan_worker_lane_queue_wait_seconds",
            "from the job's creation (or re-queue) to this attempt's claim, by lane",
            ["lane"],
            buckets=LANE_BUCKETS,
        ),
        lane_run=Histogram(
            "consingan_worker_lane_run_seconds",
            "wall time of one job attempt, claim to final state, by lane",
            ["lane", "state"],
            buckets=LANE_BUCKETS,
        ),
        cache_lookups=Counter(
            "consingan_worker_model_cache_lookups",
            "loaded-model cache lookups of the interactive lane (result: hit or miss; part: trained or sr_head)",
            ["result", "part"],
        ),
        cache_evictions=Counter(
            "consingan_worker_model_cache_evictions",
            "entries dropped from the loaded-model cache (reason: budget, stale (a newer version) or deleted)",
            ["reason", "part"],
        ),
        cache_bytes=Gauge(
            "consingan_worker_model_cache_bytes",
            "bytes of models held by the loaded-model cache",
            multiprocess_mode="livesum",
        ),
        cache_entries=Gauge(
            "consingan_worker_model_cache_entries",
            "entries in the loaded-model cache",
            multiprocess_mode="livesum",
        ),
        cache_budget=Gauge(
            "consingan_worker_model_cache_budget_bytes",
            "byte budget of the loaded-model cache (setting model_cache_bytes)",
            multiprocess_mode="max",
        ),
        gpu_peak=Gauge(
            "consingan_worker_gpu_memory_peak_bytes",
            "peak CUDA memory allocated by the last job on this worker",
            ["device"],
            multiprocess_mode="mostrecent",
        ),
        gpu_total=Gauge(
            "consingan_worker_gpu_memory_total_bytes",
            "memory of the worker's GPU",
            ["device"],
            multiprocess_mode="mostrecent",
        ),
    )


def observe_job(
    kind: str, state: str, seconds: float, queue_wait_s: float | None, device: str, lane: str = "long"
) -> None:
    """Never raises: metrics must not fail a job."""
    try:
        m = _metrics()
        m.jobs.labels(kind, state).inc()
        m.duration.labels(kind, state).observe(seconds)
        m.lane_run.labels(lane, state).observe(seconds)
        if queue_wait_s is not None:
            m.wait.labels(kind).observe(max(queue_wait_s, 0.0))
            m.lane_wait.labels(lane).observe(max(queue_wait_s, 0.0))
        if device.startswith("cuda"):
            import torch

            index = torch.cuda.current_device()
            m.gpu_peak.labels(str(index)).set(torch.cuda.max_memory_allocated(index))
            m.gpu_total.labels(str(index)).set(torch.cuda.get_device_properties(index).total_memory)
    except Exception:
        log.warning("could not record job metrics", exc_info=True)


def observe_cache(result: str, part: str) -> None:
    try:
        _metrics().cache_lookups.labels(result, part).inc()
    except Exception:
        log.warning("could not record cache metrics", exc_info=True)


def observe_cache_eviction(reason: str, part: str) -> None:
    try:
        _metrics().cache_evictions.labels(reason, part).inc()
    except Exception:
        log.warning("could not record cache metrics", exc_info=True)


def set_cache_size(size_bytes: int, entries: int, budget_bytes: int) -> None:
    try:
        m = _metrics()
        m.cache_bytes.set(size_bytes)
        m.cache_entries.set(entries)
        m.cache_budget.set(budget_bytes)
    except Exception:
        log.warning("could not record cache metrics", exc_info=True)
