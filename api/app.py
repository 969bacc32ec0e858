"""The FastAPI app factory. `uvicorn --factory api.app:create_app` reads settings from the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.contract import install_contract, operation_id
from api.job_watch import JobWatch
from api.limits import BodySizeLimit
from api.metrics import ApiMetrics, JobWatchCollector, MetricsMiddleware
from api.problems import install_problem_handlers
from api.routers import (
    animations,
    estimates,
    harmonizations,
    health,
    jobs,
    models,
    page,
    paintings,
    samples,
    super_resolutions,
    vocabulary,
)
from api.uploads import decode_limiter
from core.logs import configure_logging
from core.queue import JobQueue
from core.services import build_services
from core.settings import Settings, get_settings
from core.storage import DeadlineStorage, Storage, make_storage

DESCRIPTION = """
Upload one image, get a trained single-image GAN (ConSinGAN), then draw as many new images of the same scene as
you want, animate it, or harmonize an object pasted into its scene. Training, sampling, harmonization and
animation are **jobs**:
`queued → running → succeeded | failed | canceled`.

* Auth: `Authorization: Bearer <api key>` (`python -m core.keys create --owner NAME`).
* Errors: RFC 9457 `application/problem+json`, with a stable `type` URI.
* `Idempotency-Key` on POSTs makes retries safe; `Prefer: wait=N` returns a finished job inline.
* Webhooks follow Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
* A page for people at [`/`](/) uses exactly these routes.
"""
# Multipart framing and form fields ride on top of the image itself.
FORM_OVERHEAD_BYTES = 64 * 1024


def create_app(
    settings: Settings | None = None, storage: Storage | None = None, queue: JobQueue | None = None
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    # Every storage write on a request path ends within the deadline (a 503 past it), however silent the
    # storage: a create never hangs, and one the client gave up on leaves nothing behind.
    request_storage = DeadlineStorage(storage or make_storage(settings), settings.storage_write_deadline_s)
    services = build_services(settings, request_storage, queue, pre_ping=False)
    job_watch = JobWatch(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await job_watch.start()  # one notification listener for the whole process
        try:
            yield
        finally:
            await job_watch.stop()
            request_storage.close()
            services.db.dispose()

    # FastAPIOffline: a FastAPI whose /docs and /redoc load their scripts from this server (a package's files),
    # so they work offline and behind a firewall.
    app = FastAPIOffline(
        title="ConSinGAN service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.services = services
    app.state.job_watch = job_watch
    app.state.decode_limiter = decode_limiter(settings)
    app.state.metrics = ApiMetrics(services.db)
    app.state.metrics.registry.register(JobWatchCollector(job_watch))
    install_problem_handlers(app)
    install_contract(app)
    # Two images at most per request (a harmonization's naive image and mask); each is also limited alone.
    app.add_middleware(
        BodySizeLimit,
        max_body_bytes=2 * settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        max_other_bytes=settings.max_json_body_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: counts 413s too
    app.include_router(health.router)
    routers = (
        models,
        samples,
        harmonizations,
        paintings,
        animations,
        super_resolutions,
        jobs,
        vocabulary,
        estimates,
    )
    for module in routers:
        app.include_router(module.router)
    page.mount(app)
    return app
