"""`python -m worker.embedded` (`make run`): the whole service on one machine, no servers to install.

SQLite file + local folder under ./data, migrations applied, the API (uvicorn) in a subprocess that dies with
this process (even on SIGKILL), "embedded service up" once it answers. Two lanes (docs/lanes.md), each a loop
that claims its queued jobs (the same `run_job` as the Celery workers): the long lane (trainings) in a
second subprocess, niced so it yields the CPU; the interactive lane (samples, enlargements, animations) in
this process, warm, with its loaded-model cache; so a person gets samples while another model trains. A
thread delivers due webhooks. GPU when torch sees one, else CPU (use `preset=quick` there).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

import httpx

from core import jobs, maintenance, webhooks
from core.keys import first_key
from core.logs import configure_logging
from core.migrate import upgrade_to_head
from core.settings import Settings, get_settings
from core.vocabulary import Lane
from worker.lanes import share_the_cpu
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


def port_taken(host: str, port: int) -> bool:
    """True when something already listens on host:port (another `make run`, say). Checked before anything
    else, so a second runner neither prints "up" nor re-queues the first one's running jobs."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return False  # let uvicorn report an unknown host
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: a preexec_fn asking the kernel to SIGTERM the child when this process dies, even by SIGKILL
    (no `finally` runs then). Resolved here, before any fork."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the `finally` in main() is all there is
        return None

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return die_with_parent


PR_SET_PDEATHSIG = 1


def start_api(settings: Settings) -> subprocess.Popen[bytes]:
    # SQLite has no LISTEN: a waiting request re-reads its job. One row on this machine's disk costs well under
    # a millisecond, so the embedded API re-reads 20 times a second (an environment setting still wins).
    env = {
        "CONSINGAN_LOG_FORMAT": "text",
        "CONSINGAN_WAIT_POLL_INTERVAL_S": "0.05",
        **os.environ,
        "CONSINGAN_QUEUE_MODE": "embedded",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"]
    command += ["--host", settings.host, "--port", str(settings.port), "--log-level", "warning"]
    return subprocess.Popen(command, env=env, preexec_fn=_parent_death_signal())


def wait_until_answering(api: subprocess.Popen[bytes], settings: Settings, timeout_s: float = 120.0) -> bool:
    """True once the API answers /healthz; False when it exited first (or never answered)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and api.poll() is None:
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def start_long_lane() -> subprocess.Popen[bytes]:
    """`python -m worker.embedded --long-lane`: the long lane's loop in its own (niced) process, with the
    same settings (the environment), dying with this process."""
    env = {"CONSINGAN_LOG_FORMAT": "text", **os.environ, "CONSINGAN_QUEUE_MODE": "embedded"}
    command = [sys.executable, "-m", "worker.embedded", LONG_LANE_FLAG]
    return subprocess.Popen(command, env=env, preexec_fn=_parent_death_signal())


LONG_LANE_FLAG = "--long-lane"


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


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


def work_forever(
    ctx: WorkerContext, stop: threading.Event, watched: Sequence[tuple[str, subprocess.Popen[bytes]]] = ()
) -> int:
    """Claim and run the queued jobs of `ctx.lane`, oldest first, until `stop`; 1 when a watched process
    (the API, the long lane) exited."""
    interval = (
        ctx.settings.embedded_interactive_poll_interval_s
        if ctx.lane == "interactive"
        else ctx.settings.embedded_poll_interval_s
    )
    while not stop.is_set():
        for name, process in watched:
            if process.poll() is not None:
                log.error(f"the {name} exited; stopping", extra={"exit_code": process.returncode})
                return 1
        job_id = None
        try:
            with ctx.db.read() as session:
                job_id = jobs.next_queued_job_id(session, ctx.lane)
            if job_id is not None:
                run_job(ctx, job_id)
                continue
        except Exception:  # e.g. the database stayed away: the job is still queued; poll again
            log.exception("job run failed", extra={"job_id": job_id, "lane": ctx.lane})
        stop.wait(interval)
    return 0


KEY_COMMAND = "make key"  # or `.venv/bin/python -m core.keys create --owner NAME`


def announce_first_key(ctx: WorkerContext, url: str) -> str | None:
    """A fresh database gets a local owner and its key, printed once on stdout with where to paste it: the
    page needs a key and a newcomer should not need a second shell to make one. Returns the key."""
    with ctx.db.transaction() as session:
        key = first_key(session)
    if key is None:
        return None
    print(
        "\n"
        "  A first API key, for the owner `local` (shown this once: only its hash is stored):\n"
        f"\n      {key}\n\n"
        f'  Paste it into the page\'s "API key" field at {url}/ (it stays for this browser tab).\n'
        f"  Another key later: `{KEY_COMMAND} OWNER=name` (or .venv/bin/python -m core.keys create --owner name).\n",
        flush=True,
    )
    return key


def long_lane_main() -> int:
    """The long lane's process: trainings, at a lower CPU priority than the interactive lane."""
    settings = get_settings(queue_mode="embedded")
    configure_logging(os.environ.get("CONSINGAN_LOG_FORMAT", "text"), settings.log_level)
    share_the_cpu(settings, "long")
    ctx = build_context(settings, "long")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        raise KeyboardInterrupt  # a training stops now; its job is re-queued when the runner starts again

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return work_forever(ctx, stop)
    except KeyboardInterrupt:
        return 0


def _lanes_up(settings: Settings, lane: Lane) -> WorkerContext:
    share_the_cpu(settings, lane)
    return build_context(settings, lane)


def main() -> int:
    settings = get_settings(queue_mode="embedded")
    configure_logging(os.environ.get("CONSINGAN_LOG_FORMAT", "text"), settings.log_level)
    if port_taken(settings.host, settings.port):
        log.error(
            f"{settings.host}:{settings.port} is already in use (another `make run`?); "
            "stop that one or set CONSINGAN_PORT"
        )
        return 1
    upgrade_to_head(settings.database_url)
    ctx = _lanes_up(settings, "interactive")
    requeue_abandoned(ctx)
    api = start_api(settings)
    long_lane: subprocess.Popen[bytes] | None = None
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    try:
        if not wait_until_answering(api, settings):
            log.error(
                f"the API did not start on {settings.host}:{settings.port} (exit code {api.poll()}); "
                "see its error above"
            )
            return 1
        long_lane = start_long_lane()
        threading.Thread(target=deliver_webhooks_forever, args=(ctx, stop), daemon=True).start()
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1"}.get(settings.host, settings.host)
        announce_first_key(ctx, f"http://{host}:{settings.port}")
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
        watched = [("API process (port taken?)", api), ("long-lane process", long_lane)]
        exit_code = work_forever(ctx, stop, watched)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if long_lane is not None:
            stop_process(long_lane)
        stop_process(api)
    return exit_code


if __name__ == "__main__":
    sys.exit(long_lane_main() if LONG_LANE_FLAG in sys.argv[1:] else main())
