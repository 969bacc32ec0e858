"""`python -m worker.embedded` (`make run`): the whole service on one machine, no servers to install.

SQLite file + local folder under ./data, migrations applied, the API (uvicorn) in a subprocess, and in this
process a worker loop that claims queued jobs (the same `run_job` as the Celery worker) while a thread
delivers due webhooks. GPU when torch sees one, else CPU (use `preset=quick` there).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from core import jobs, maintenance, webhooks
from core.logs import configure_logging
from core.migrate import upgrade_to_head
from core.settings import Settings, get_settings
from worker.run import run_job
from worker.runtime import WorkerContext, build_context

log = logging.getLogger("worker.embedded")


def requeue_abandoned(ctx: WorkerContext) -> int:
    """Jobs left `running` by a previous embedded run that died: this is the only worker, so every one is an
    orphan, whatever its heartbeat says. Back to `queued` (training resumes from the last stored stage), or
    failed with the reason once out of attempts. Returns how many were re-queued."""
    reaped = maintenance.reap_stale_jobs(ctx.db, ctx.queue, ctx.settings, older_than_s=0)
    if reaped.requeued or reaped.failed:
        log.warning(
            "jobs abandoned by a previous run",
            extra={"requeued": len(reaped.requeued), "failed": len(reaped.failed)},
        )
    return len(reaped.requeued)


def start_api(settings: Settings) -> subprocess.Popen[bytes]:
    env = {"CONSINGAN_LOG_FORMAT": "text", **os.environ, "CONSINGAN_QUEUE_MODE": "embedded"}
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"]
    command += ["--host", settings.host, "--port", str(settings.port), "--log-level", "warning"]
    return subprocess.Popen(command, env=env)


def deliver_webhooks_forever(ctx: WorkerContext, stop: threading.Event) -> None:
    """Due webhooks every second; the data-lifecycle cleanup every `cleanup_interval_s`."""
    next_cleanup = time.monotonic() + 60.0
    while not stop.wait(1.0):
        try:
            with ctx.db.read() as session:
                due = webhooks.due_delivery_ids(session)
            for delivery_id in due:
                webhooks.deliver(ctx.db, ctx.settings, delivery_id)
            if time.monotonic() >= next_cleanup:
                next_cleanup = time.monotonic() + ctx.settings.cleanup_interval_s
                maintenance.cleanup(ctx.db, ctx.storage, ctx.settings)
        except Exception:
            log.exception("webhook delivery loop error")


def work_forever(ctx: WorkerContext, stop: threading.Event, api: subprocess.Popen[bytes]) -> int:
    while not stop.is_set():
        if api.poll() is not None:
            log.error("the API process exited (port taken?); stopping", extra={"exit_code": api.returncode})
            return 1
        job_id = None
        try:
            with ctx.db.read() as session:
                job_id = jobs.next_queued_job_id(session)
            if job_id is not None:
                run_job(ctx, job_id)
                continue
        except Exception:  # e.g. the database stayed away: the job is still queued; poll again
            log.exception("job run failed", extra={"job_id": job_id})
        stop.wait(ctx.settings.embedded_poll_interval_s)
    return 0


def main() -> int:
    settings = get_settings(queue_mode="embedded")
    configure_logging(os.environ.get("CONSINGAN_LOG_FORMAT", "text"), settings.log_level)
    upgrade_to_head(settings.database_url)
    ctx = build_context(settings)
    requeue_abandoned(ctx)
    api = start_api(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    threading.Thread(target=deliver_webhooks_forever, args=(ctx, stop), daemon=True).start()
    log.info(
        "embedded service up",
        extra={
            "url": f"http://{settings.host}:{settings.port}",
            "docs": f"http://{settings.host}:{settings.port}/docs",
            "device": ctx.device,
            "database": settings.database_url,
            "storage": str(settings.storage_dir),
        },
    )
    exit_code = 0
    try:
        exit_code = work_forever(ctx, stop, api)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        api.terminate()
        try:
            api.wait(10)
        except subprocess.TimeoutExpired:
            api.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
