"""Fault tests: the services the system stands on blink, one test per failure, against a private Redis, a
private Postgres and an S3 server behind a proxy that can refuse connections or swallow traffic, with a real
API (uvicorn) and real Celery workers (one GPU-queue worker; one webhooks worker running beat).

Each scenario trains a few tiny models while a dependency goes away for OUTAGE_S seconds and comes back, and
asserts: every job ends exactly once and succeeds (none failed for an infrastructure reason, no attempt
counted for it, 8 previews in rows and in storage, no more), recovery within RECOVERY_BOUND_S after the
dependency is back (every unfinished job running with a fresh heartbeat or queued with a live message, and work
moving), each model's webhook delivered, and what the API answered during the outage.

`python bench/faults.py --outage 60,300` runs the same scenarios with long outages and production timings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core.ids import new_id
from core.models import DeliveryState, Job, JobEvent, Model, Sample, WebhookDelivery
from core.queue import CeleryQueue, priority_lists
from tests.faults.harness import (
    ApiServer,
    PrivatePostgres,
    PrivateRedis,
    SwitchableProxy,
    binary,
    start_celery,
    stop_group,
    wait_for,
    wait_ready,
)
from tests.service_fixtures import RUN_ID, TINY_TRAINING, scene_image, settings_env, unavailable

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

OUTAGE_S = float(os.environ.get("CONSINGAN_FAULTS_OUTAGE_S", "5"))
JOBS = int(os.environ.get("CONSINGAN_FAULTS_JOBS", "3"))
# Production timings (heartbeat 60 s, reaper 30 s, infra retry 120 s): the bench's long outages.
PRODUCTION_TIMINGS = os.environ.get("CONSINGAN_FAULTS_PRODUCTION_TIMINGS", "") == "1"
RECOVERY_BOUND_S = 10.0
READYZ_BOUND_S = 2.0
FINAL = ("succeeded", "failed", "canceled")
TRAINING = {name: str(value) for name, value in TINY_TRAINING.items()}
COMPRESSED_TIMINGS: dict[str, Any] = {
    "storage_connect_timeout_s": 1.0,
    "storage_read_timeout_s": 2.0,
    "database_connect_timeout_s": 2.0,
    "broker_connect_timeout_s": 2.0,
    "heartbeat_interval_s": 1.0,
    "heartbeat_timeout_s": 10.0,
    "reaper_interval_s": 2.0,  # often: a reaper that mistook an outage for dead workers would show
    "infra_retry_s": 8.0,
    "infra_outage_limit_s": 300.0,
}


@dataclass
class Outcome:
    scenario: str
    outage_s: float
    jobs: int
    succeeded: int
    failed: int
    stuck: int
    duplicated: int
    recover_s: float | None
    given_back: int
    total_s: float


@dataclass
class Env:
    settings: Any
    db: Any
    storage: Any  # straight to the S3 server, for the test's own checks
    redis: PrivateRedis
    pg: PrivatePostgres
    proxy: SwitchableProxy
    api: ApiServer
    gpu_log: Path
    service_log: Path

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def new_owner(self) -> tuple[str, str]:
        from core.keys import create_key, get_or_create_owner

        with self.db.transaction() as session:
            owner = get_or_create_owner(session, f"faults-{os.urandom(6).hex()}")
            return owner.id, create_key(session, owner)


@pytest.fixture(scope="module")
def env(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from core.db import Database
    from core.migrate import upgrade_to_head
    from core.settings import get_settings
    from core.storage import S3Storage

    for name in ("redis-server", "initdb", "pg_ctl"):
        if binary(name) is None:
            unavailable(f"{name} not found: the fault tests start their own Redis and Postgres")
    folder = tmp_path_factory.mktemp("faults")
    redis, pg = PrivateRedis(folder), PrivatePostgres()
    redis.start()
    pg.init()
    upgrade_to_head(pg.url)
    proxy = SwitchableProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    settings = get_settings(
        database_url=pg.url,
        queue_mode="celery",
        broker_url=redis.url,
        gpu_queue=f"gpu-faults-{RUN_ID}",
        webhooks_queue=f"webhooks-faults-{RUN_ID}",
        storage_backend="s3",
        s3_endpoint_url=proxy.url,
        s3_bucket=f"consingan-faults-{RUN_ID}",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        allow_private_webhook_urls=True,
        progress_interval_s=0.5,
        cancel_poll_interval_s=0.5,
        webhook_sweep_interval_s=1.0,
        webhook_timeout_s=5.0,
        device="cpu",
        log_format="text",
        **({} if PRODUCTION_TIMINGS else COMPRESSED_TIMINGS),
    )
    direct = S3Storage(settings.model_copy(update={"s3_endpoint_url": s3_endpoint}))
    direct.ensure_bucket()
    db = Database(pg.url)
    api = ApiServer(settings)
    variables = {**os.environ, **settings_env(settings), "OMP_NUM_THREADS": "1"}
    gpu_log, service_log = folder / "gpu.log", folder / "service.log"
    common = ["--without-gossip", "--without-mingle", "--loglevel=INFO"]
    gpu = start_celery(
        variables,
        ["worker", "-Q", f"{settings.gpu_queue},{settings.interactive_queue}", "--pool=prefork", "--concurrency=1",
         "-n", f"faults-gpu-{RUN_ID}@%h", *common],
        gpu_log,
    )  # fmt: skip
    service = start_celery(
        variables,
        ["worker", "-Q", settings.webhooks_queue, "-B", "--schedule", str(folder / "beat-schedule"),
         "--concurrency=2", "--max-tasks-per-child=1000", "-n", f"faults-svc-{RUN_ID}@%h", *common],
        service_log,
    )  # fmt: skip
    try:
        wait_ready(gpu, gpu_log)
        wait_ready(service, service_log)
        yield Env(settings, db, direct, redis, pg, proxy, api, gpu_log, service_log)
    finally:
        stop_group(gpu)
        stop_group(service)
        api.stop()
        db.dispose()
        proxy.close()
        redis.kill()
        pg.destroy()


# --- helpers ------------------------------------------------------------------------------------------------


def post_model(
    client: httpx.Client, seed: int, webhook_url: str | None = None, **headers: str
) -> httpx.Response:
    data = {**TRAINING, "seed": str(seed)}
    if webhook_url:
        data |= {"webhook_url": webhook_url, "webhook_events": "model.succeeded,model.failed"}
    files = {"image": ("scene.png", scene_image(48, 40), "image/png")}
    return client.post("/v1/models", data=data, files=files, headers=headers)


def submit(client: httpx.Client, count: int, webhook_url: str) -> list[str]:
    ids = []
    for seed in range(count):
        response = post_model(client, seed, webhook_url)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def jobs_of(env: Env, model_ids: list[str]) -> list[Job]:
    with env.db.read() as session:
        return list(session.scalars(select(Job).where(Job.model_id.in_(model_ids)).order_by(Job.created_at)))


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/unavailable")
    assert int(response.headers["retry-after"]) > 0


def check_readyz(client: httpx.Client, dependency: str) -> None:
    started = time.monotonic()
    response = client.get("/readyz")
    took = time.monotonic() - started
    assert took < READYZ_BOUND_S + 0.5, f"/readyz took {took:.1f} s"
    assert response.status_code == 503, response.text
    assert response.json()["checks"][dependency].startswith("unavailable"), response.text


def recovered(env: Env, model_ids: list[str], back: dt.datetime) -> bool:
    """Every unfinished job is running with a heartbeat written since `back`, or queued with a live task
    message; and work moves (some job started, beat or ended since `back`), unless all are done."""
    jobs = jobs_of(env, model_ids)
    unfinished = [j for j in jobs if j.state not in FINAL]
    if not unfinished:
        return True
    live = CeleryQueue(env.settings).pending_job_ids(env.settings.heartbeat_timeout_s) or set()

    def since(moment: dt.datetime | None) -> bool:
        return moment is not None and moment > back

    moving = any(since(j.heartbeat_at) or since(j.started_at) or since(j.finished_at) for j in jobs)
    healthy = all(
        (j.state == "queued" and j.id in live) or (j.state == "running" and since(j.heartbeat_at))
        for j in unfinished
    )
    return moving and healthy


def finish(
    env: Env,
    scenario: str,
    model_ids: list[str],
    back: dt.datetime,
    receiver: Any,
    started: float,
    outage_s: float = OUTAGE_S,
) -> Outcome:
    """Wait for recovery (bounded) and the end of every job, then check that each ended exactly once, well."""
    try:
        recover_s: float | None = wait_for(
            lambda: recovered(env, model_ids, back), RECOVERY_BOUND_S, f"{scenario}: recovery", every_s=0.2
        )
    except AssertionError:
        recover_s = None
    deadline = time.monotonic() + 60 + 20 * len(model_ids)
    while any(j.state not in FINAL for j in jobs_of(env, model_ids)) and time.monotonic() < deadline:
        time.sleep(0.5)
    jobs = jobs_of(env, model_ids)
    duplicated = 0
    with env.db.read() as session:
        for job in jobs:
            finals = session.scalar(
                select(func.count()).where(JobEvent.job_id == job.id, JobEvent.type.in_(FINAL))
            )
            rows = set(session.scalars(select(Sample.key).where(Sample.job_id == job.id)))
            stored = {key for key, _ in env.storage.list_objects(f"models/{job.model_id}/samples/")}
            if finals != 1 or len(rows) > env.settings.preview_samples or stored != rows:
                duplicated += 1
    outcome = Outcome(
        scenario=scenario,
        outage_s=outage_s,
        jobs=len(jobs),
        succeeded=sum(j.state == "succeeded" for j in jobs),
        failed=sum(j.state == "failed" for j in jobs),
        stuck=sum(j.state not in FINAL for j in jobs),
        duplicated=duplicated,
        recover_s=None if recover_s is None else round(recover_s, 1),
        given_back=sum(j.given_back for j in jobs),
        total_s=round(time.monotonic() - started, 1),
    )
    print("\nfault summary: " + json.dumps(asdict(outcome)))
    context = (
        [(j.id, j.state, j.attempts, j.given_back, j.error) for j in jobs],
        env.gpu_log.read_text()[-3000:],
    )
    assert outcome.stuck == 0 and outcome.failed == 0 and outcome.succeeded == len(model_ids), context
    assert outcome.duplicated == 0, context
    assert all(j.attempts - j.given_back == 1 for j in jobs), context  # no attempt spent on the outage
    assert recover_s is not None, f"{scenario}: not recovered within {RECOVERY_BOUND_S} s: {context}"
    check_webhooks(env, model_ids, receiver)
    return outcome


def check_webhooks(env: Env, model_ids: list[str], receiver: Any) -> None:
    def delivered() -> bool:
        with env.db.read() as session:
            deliveries = list(
                session.scalars(select(WebhookDelivery).where(WebhookDelivery.model_id.in_(model_ids)))
            )
        return len(deliveries) == len(model_ids) and all(
            d.state == DeliveryState.DELIVERED for d in deliveries
        )

    wait_for(delivered, 60, "every model's webhook delivered")
    with env.db.read() as session:
        events = {
            d.event_type
            for d in session.scalars(select(WebhookDelivery).where(WebhookDelivery.model_id.in_(model_ids)))
        }
    assert events == {"model.succeeded"}
    assert {json.loads(hit.body)["data"]["model_id"] for hit in receiver.received} >= set(model_ids)


def wait_until_running(env: Env, model_ids: list[str]) -> None:
    wait_for(
        lambda: any(j.state in ("running", *FINAL) for j in jobs_of(env, model_ids)),
        60,
        "a job running",
        every_s=0.1,
    )


@contextlib.contextmanager
def outage(stop: Callable[[], None], start: Callable[[], None], seconds: float) -> Iterator[None]:
    """Stop a dependency; the body checks the API meanwhile; the dependency comes back `seconds` after it
    went away."""
    began = time.monotonic()
    stop()
    try:
        yield
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))
    finally:
        start()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- one test per failure -----------------------------------------------------------------------------------


def test_storage_refusing_connections(env: Env, receiver: Any) -> None:
    started = time.monotonic()
    _, key = env.new_owner()
    with env.client(key) as client:
        model_ids = submit(client, JOBS, receiver.url)
        wait_until_running(env, model_ids)
        with outage(env.proxy.refuse, env.proxy.restore, OUTAGE_S):
            assert_unavailable(post_model(client, 99))
            assert client.get("/v1/models").status_code == 200  # reads that need no storage still work
            check_readyz(client, "storage")
        back = utc_now()
    finish(env, "storage refusing connections", model_ids, back, receiver, started)


def test_storage_silently_dropping_traffic(env: Env, receiver: Any) -> None:
    started = time.monotonic()
    _, key = env.new_owner()
    settings = env.settings
    with env.client(key) as client:
        model_ids = submit(client, JOBS, receiver.url)
        wait_until_running(env, model_ids)
        with outage(env.proxy.blackhole, env.proxy.restore, OUTAGE_S):
            check_readyz(client, "storage")
            began = time.monotonic()
            assert_unavailable(post_model(client, 99))
            # the upload and the cleanup of what it may have written: each bounded by the client's timeouts
            per_call = (
                settings.storage_connect_timeout_s + settings.storage_read_timeout_s
            ) * settings.storage_max_attempts
            assert time.monotonic() - began < 2 * per_call + 3
        back = utc_now()
    finish(env, "storage silently dropping traffic", model_ids, back, receiver, started)


def test_postgres_stopped(env: Env, receiver: Any) -> None:
    import redis

    started = time.monotonic()
    _, key = env.new_owner()
    broker = redis.Redis.from_url(env.redis.url)
    with env.client(key) as client:
        model_ids = submit(client, JOBS, receiver.url)
        wait_until_running(env, model_ids)
        # one Redis list per fair-share priority step (core.queue.priority_lists)
        lists = priority_lists(env.settings.gpu_queue)
        waiting = sum(broker.llen(name) for name in lists)
        with outage(lambda: env.pg.stop("immediate"), env.pg.start, OUTAGE_S):
            assert_unavailable(client.get("/v1/models"))
            check_readyz(client, "database")
            time.sleep(max(0.0, OUTAGE_S - 2))
            # The worker does not drain the queue while it cannot claim: at most the one it holds is taken.
            assert sum(broker.llen(name) for name in lists) >= waiting - 1
        back = utc_now()
        # The first request after the restart succeeds (no stale pooled connection), and so does the next
        # one on the same keep-alive connection.
        assert client.get("/v1/models").status_code == 200
        assert client.get("/v1/models").status_code == 200
    broker.close()
    finish(env, "postgres stopped", model_ids, back, receiver, started)


def test_postgres_lost_during_the_success_commit(env: Env, receiver: Any) -> None:
    """Postgres goes away just as the first training stores its previews, before its success commit, for
    longer than the worker's retry budget (in the test): the attempt deletes its previews, gives the job back
    without spending the attempt, and the next attempt starts from the complete checkpoint (no retraining)."""
    started = time.monotonic()
    seconds = OUTAGE_S if PRODUCTION_TIMINGS else env.settings.infra_retry_s + 4
    _, key = env.new_owner()
    stopped_at: list[float] = []

    def stop_postgres_at_the_first_preview(chunk: bytes) -> None:
        if not stopped_at and chunk.startswith(b"PUT ") and b"/samples/" in chunk.split(b"\r\n", 1)[0]:
            stopped_at.append(time.monotonic())
            env.pg.stop("immediate")

    env.proxy.on_upstream = stop_postgres_at_the_first_preview
    try:
        with env.client(key) as client:
            model_ids = submit(client, JOBS, receiver.url)
            wait_for(lambda: bool(stopped_at), 120, "the first preview stored")
            time.sleep(max(0.0, seconds - (time.monotonic() - stopped_at[0])))
            if seconds > env.settings.infra_retry_s:
                # down until the worker's retry budget has run out: it starts at the worker's first failed
                # call, after all the previews are stored, which a slow machine puts seconds after the first
                wait_for(
                    lambda: "giving the job back" in env.gpu_log.read_text(),
                    env.settings.infra_retry_s + 60,
                    "the worker gives the job back",
                )
            env.pg.start()
            back = utc_now()
    finally:
        env.proxy.on_upstream = None
    scenario = "postgres lost during the success commit"
    outcome = finish(env, scenario, model_ids, back, receiver, started, seconds)
    first = jobs_of(env, model_ids)[0]
    if seconds > env.settings.infra_retry_s:  # given back, resumed from the complete checkpoint
        assert (first.attempts, first.given_back) == (2, 1), (first.attempts, first.given_back)
        log = env.gpu_log.read_text()
        assert re.search(rf"training already complete.*job_id={first.id}", log)
        assert outcome.given_back == 1
    else:  # the commit was retried inside the attempt
        assert (first.attempts, first.given_back) == (1, 0)


def test_redis_killed_and_restarted_empty(env: Env, receiver: Any) -> None:
    started = time.monotonic()
    _, key = env.new_owner()
    with env.client(key) as client:
        model_ids = submit(client, JOBS, receiver.url)
        wait_until_running(env, model_ids)
        with outage(env.redis.kill, env.redis.start, OUTAGE_S):
            check_readyz(client, "broker")
        back = utc_now()
    finish(env, "redis killed, restarted empty", model_ids, back, receiver, started)


def test_api_answers_503_while_postgres_or_storage_is_down(env: Env, receiver: Any) -> None:
    _, key = env.new_owner()
    with env.client(key) as client:
        (model_id,) = submit(client, 1, receiver.url)
        job_id = client.get(f"/v1/models/{model_id}").json()["train_job_id"]
        routes: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/v1/models", {}),
            ("GET", f"/v1/models/{model_id}", {}),
            ("GET", f"/v1/models/{model_id}/samples", {}),
            ("POST", f"/v1/models/{model_id}/samples", {"json": {"n": 1}}),
            ("POST", f"/v1/models/{model_id}/cancel", {}),
            ("DELETE", f"/v1/models/{model_id}", {}),
            ("GET", f"/v1/jobs/{job_id}", {}),
            ("GET", f"/v1/jobs/{job_id}/events", {}),
            ("GET", "/v1/jobs", {}),
            ("GET", "/v1/vocabulary", {}),
            ("GET", f"/v1/models/{model_id}/input", {}),
            ("GET", f"/v1/models/{model_id}/stages/0/preview", {}),
            ("DELETE", f"/v1/models/{model_id}/samples/{new_id('smp')}", {}),
            ("POST", f"/v1/models/{model_id}/sr-head", {"json": {}}),
            ("POST", f"/v1/models/{model_id}/super-resolutions", {"json": {"factor": 2}}),
            ("GET", "/metrics", {}),
        ]
        env.pg.stop("immediate")
        try:
            for method, path, extra in routes:
                assert_unavailable(client.request(method, path, **extra))
            head = client.head(f"/v1/models/{model_id}/input")  # no body: the status and Retry-After
            assert head.status_code == 503 and int(head.headers["retry-after"]) > 0
            assert_unavailable(post_model(client, 7))
            check_readyz(client, "database")
            assert client.get("/healthz").status_code == 200
            assert client.get("/").status_code == 200  # the page is static: it loads and then says why
        finally:
            env.pg.start()
        # the first request after the restart and the next one on the same connection both succeed
        assert client.get(f"/v1/models/{model_id}").status_code == 200
        assert client.get("/v1/models").status_code == 200

        env.proxy.refuse()
        try:
            assert_unavailable(post_model(client, 8))
            check_readyz(client, "storage")
        finally:
            env.proxy.restore()
        assert client.get("/readyz").status_code == 200
    wait_for(lambda: all(j.state in FINAL for j in jobs_of(env, [model_id])), 90, "the model trained")


def test_create_refused_while_redis_is_down_leaves_nothing(env: Env, receiver: Any) -> None:
    owner_id, key = env.new_owner()
    stored_before = {k.split("/")[1] for k, _ in env.storage.list_objects("models/")}
    with env.client(key) as client:
        env.redis.kill()
        try:
            began = time.monotonic()
            refused = post_model(client, 5, receiver.url, **{"Idempotency-Key": "faults-redis-down"})
            assert time.monotonic() - began < 15
            assert_unavailable(refused)
        finally:
            env.redis.start()
        # nothing the client could see or be told about: no model, no job, no webhook, no stored object
        assert client.get("/v1/models").json()["data"] == []
        with env.db.read() as session:
            assert session.scalar(select(func.count()).where(Model.owner_id == owner_id)) == 0
            assert session.scalar(select(func.count()).where(WebhookDelivery.owner_id == owner_id)) == 0
            models = set(session.scalars(select(Model.id)))
        stored = {k.split("/")[1] for k, _ in env.storage.list_objects("models/")} - stored_before
        assert stored <= models, stored - models  # no new object without its model
        # the same Idempotency-Key really retries once the broker is back
        retried = post_model(client, 5, receiver.url, **{"Idempotency-Key": "faults-redis-down"})
        assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers
        model_id = retried.json()["id"]
    wait_for(lambda: all(j.state in FINAL for j in jobs_of(env, [model_id])), 90, "the retried model trained")
    check_webhooks(env, [model_id], receiver)
    assert all(json.loads(hit.body)["type"] == "model.succeeded" for hit in receiver.received)
