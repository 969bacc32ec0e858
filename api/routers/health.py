"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import ServicesDep
from api.schemas import Health

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Database, broker and storage are reachable",
    responses={503: {"model": Health, "description": "a dependency is down; `checks` says which"}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}

    def database() -> None:
        with services.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    for name, check in (
        ("database", database),
        ("broker", services.queue.check),
        ("storage", services.storage.check),
    ):
        try:
            check()
            checks[name] = "ok"
        except Exception as e:
            log.warning("readiness check failed", extra={"check": name, "error": str(e)})
            checks[name] = f"unavailable: {type(e).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests and latency by route, jobs by state",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
