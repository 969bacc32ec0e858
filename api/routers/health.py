"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.contract import header, problem_responses
from api.deps import ServicesDep
from api.schemas import Health

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

# /readyz answers within this, whatever hangs: a check still running then counts as unavailable (timeout).
# The checks run in their own small pool, so a probe that hangs on a silent dependency never waits for a
# thread of the API's request pool.
READY_DEADLINE_S = 1.5
_checks_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="readyz")


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Database, broker and storage are reachable",
    responses={
        503: {
            "model": Health,
            "description": "a dependency is down; `checks` says which",
            "headers": {
                "Retry-After": header(
                    "seconds to wait before asking again", {"type": "integer", "minimum": 0}, True
                )
            },
        }
    },
)
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}

    def database() -> None:
        with services.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    running: dict[str, Future[None]] = {
        name: _checks_pool.submit(check)
        for name, check in (
            ("database", database),
            ("broker", services.queue.check),
            ("storage", services.storage.check),
        )
    }
    wait(running.values(), timeout=READY_DEADLINE_S)
    for name, future in running.items():
        error = future.exception() if future.done() else TimeoutError("no answer in time")
        if error is None:
            checks[name] = "ok"
            continue
        log.warning("readiness check failed", extra={"check": name, "error": str(error)})
        checks[name] = f"unavailable: {'timeout' if not future.done() else type(error).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    if ready:
        return JSONResponse(body.model_dump())
    # Like every other 503: when to ask again (a load balancer or a client backs off instead of hammering).
    retry_after = str(services.settings.unavailable_retry_after_s)
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": retry_after})


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests and latency by route, jobs by state",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **problem_responses(503, notes={503: "the database (jobs by state) is unavailable"}),
    },
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
