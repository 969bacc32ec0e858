"""The interactive lane's loaded-model cache: LRU within a byte budget (unit), and on real Postgres and S3 with
tiny CPU trainings: a second request reads nothing from storage, a replaced SR head or a deleted model is
never served from the cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from core import service
from core.keys import create_key, get_or_create_owner
from core.models import Job, JobKind, JobState, Model, Sample
from core.services import Services
from core.storage import Storage
from tests.service_fixtures import TINY_TRAINING, Caller, RecordingQueue, scene_image, submit_job
from worker.model_cache import CacheKey, ModelCache, sr_head_version, trained_version
from worker.run import run_job
from worker.runtime import WorkerContext, build_context

# --- the cache alone ------------------------------------------------------------------------------------


class Loader:
    def __init__(self, size: int) -> None:
        self.size, self.calls = size, 0

    def __call__(self) -> tuple[object, int]:
        self.calls += 1
        return object(), self.size


def test_a_second_lookup_is_a_hit_and_loads_nothing() -> None:
    cache, load = ModelCache(100), Loader(10)
    key = CacheKey("mdl_a", "trained", "v1")
    first = cache.get(key, load)
    assert cache.get(key, load) is first and load.calls == 1 and cache.bytes == 10


def test_least_recently_used_entries_leave_beyond_the_budget() -> None:
    cache = ModelCache(25)
    a, b, c = (CacheKey(f"mdl_{n}", "trained", "v1") for n in "abc")
    cache.get(a, Loader(10))
    cache.get(b, Loader(10))
    cache.get(a, Loader(10))  # a is now the most recently used
    cache.get(c, Loader(10))  # 30 > 25: b goes
    assert cache.cached_keys() == [a, c] and cache.bytes == 20
    too_big = Loader(26)
    cache.get(CacheKey("mdl_d", "trained", "v1"), too_big)  # served, never kept
    assert cache.cached_keys() == [a, c] and too_big.calls == 1


def test_a_new_version_replaces_the_old_and_forget_drops_a_model() -> None:
    cache = ModelCache(100)
    old, new = CacheKey("mdl_a", "sr_head", "v1"), CacheKey("mdl_a", "sr_head", "v2")
    trained = CacheKey("mdl_a", "trained", "v1")
    cache.get(old, Loader(10))
    cache.get(trained, Loader(10))
    load_new = Loader(10)
    cache.get(new, load_new)
    assert load_new.calls == 1 and cache.cached_keys() == [trained, new]  # the old head is gone
    cache.forget("mdl_a")
    assert cache.cached_keys() == [] and cache.bytes == 0


def test_versions_change_with_the_rows_that_point_at_the_objects() -> None:
    model = Model(id="mdl_a", checkpoint_key="models/mdl_a/checkpoint.safetensors", sr_head={"sha256": "1"})
    before_trained, before_head = trained_version(model), sr_head_version(model)
    model.sr_head = {"sha256": "2"}
    assert trained_version(model) == before_trained and sr_head_version(model) != before_head
    model.checkpoint_key = "models/mdl_a/other.safetensors"
    assert trained_version(model) != before_trained


# --- in a worker ------------------------------------------------------------------------------------------


class CountingStorage:
    """The worker's storage, recording every key (or prefix) it reads, by any of the protocol's reads."""

    READS = ("get", "iter_chunks", "exists", "size", "list_objects")
    # writes; presigned_url signs locally (no request); check is the readiness probe
    NOT_READS = ("put", "delete", "delete_prefix", "presigned_url", "check")

    def __init__(self, real: Any) -> None:
        self.real = real
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return bytes(self.real.get(key))

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        self.reads.append(key)
        return iter(self.real.iter_chunks(key))

    def exists(self, key: str) -> bool:
        self.reads.append(key)
        return bool(self.real.exists(key))

    def size(self, key: str) -> int:
        self.reads.append(key)
        return int(self.real.size(key))

    def list_objects(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        self.reads.append(prefix)
        return iter(self.real.list_objects(prefix))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_the_counting_storage_counts_every_read_the_storage_protocol_has() -> None:
    """A read method added to core.storage.Storage must be counted too (or named as no read), else "reads
    nothing from storage" below could miss it."""
    protocol = {name for name, value in vars(Storage).items() if callable(value) and not name.startswith("_")}
    assert protocol == set(CountingStorage.READS) | set(CountingStorage.NOT_READS), protocol
    assert all(name in vars(CountingStorage) for name in CountingStorage.READS)


@pytest.fixture(scope="module")
def owner(db: Any) -> Caller:
    with db.transaction() as session:
        o = get_or_create_owner(session, f"cache-tests-{time.time_ns()}")
        return Caller(o.id, o.name, create_key(session, o), o.webhook_secret)


@pytest.fixture(scope="module")
def long_ctx(db: Any, storage: Any, settings: Any) -> WorkerContext:
    return WorkerContext(settings, db, storage, RecordingQueue())


@pytest.fixture
def warm(db: Any, storage: Any, settings: Any) -> Iterator[WorkerContext]:
    """An interactive-lane context (with its cache) on the test's database and S3, storage reads counted."""
    ctx = build_context(settings, "interactive")
    assert ctx.models is not None
    ctx.db.dispose()
    yield dataclasses.replace(ctx, db=db, storage=CountingStorage(storage), queue=RecordingQueue())


def model_of(db: Any, model_id: str) -> Model:
    with db.read() as session:
        return session.get_one(Model, model_id)


def error_of(db: Any, job_id: str) -> str | None:
    with db.read() as session:
        return session.get_one(Job, job_id).error


def train(db: Any, storage: Any, settings: Any, ctx: WorkerContext, owner_id: str, **extra: Any) -> Model:
    params = {"seed": 3, **TINY_TRAINING, **extra}
    job = submit_job(db, storage, settings, JobKind.TRAIN, owner_id, params, image=scene_image())
    assert run_job(ctx, job.id) == JobState.SUCCEEDED, error_of(db, job.id)
    return model_of(db, job.model_id)


def sample_bytes(db: Any, storage: Any, settings: Any, ctx: WorkerContext, model: Model) -> list[bytes]:
    job = submit_job(db, storage, settings, JobKind.SAMPLE, model.owner_id, {"n": 2, "seed": 5}, model=model)
    assert run_job(ctx, job.id) == JobState.SUCCEEDED, error_of(db, job.id)
    with db.read() as session:
        keys = session.scalars(select(Sample.key).where(Sample.job_id == job.id).order_by(Sample.key))
        return [storage.get(key) for key in keys]


def test_a_second_sample_reads_nothing_from_storage_and_draws_the_same_images(
    db: Any, storage: Any, settings: Any, long_ctx: WorkerContext, warm: WorkerContext, owner: Caller
) -> None:
    model = train(db, storage, settings, long_ctx, owner.owner_id)
    reads: list[str] = warm.storage.reads  # type: ignore[attr-defined]
    first = sample_bytes(db, storage, settings, warm, model)
    assert model.checkpoint_key in reads
    reads.clear()
    again = sample_bytes(db, storage, settings, warm, model)
    assert reads == []  # the checkpoint came from the cache
    assert again == first  # and sampling did not change the cached model
    assert warm.models is not None and [k.part for k in warm.models.cached_keys()] == ["trained"]


def test_a_replaced_sr_head_is_never_served_from_the_cache(
    db: Any, storage: Any, settings: Any, long_ctx: WorkerContext, warm: WorkerContext, owner: Caller
) -> None:
    model = train(db, storage, settings, long_ctx, owner.owner_id, sr_factor=2.0, sr_iters=2)
    (head_job,) = model_of(db, model.id).sr_head_jobs  # the head trains as its own job, after the model
    assert run_job(long_ctx, head_job.id) == JobState.SUCCEEDED, error_of(db, head_job.id)

    def enlarge() -> dict[str, Any]:
        current = model_of(db, model.id)
        body = {"factor": 2.0, "n": 1, "noise_scale": 1.0, "seed": 1, "sample_id": None}
        job = submit_job(db, storage, settings, JobKind.SUPER_RESOLVE, owner.owner_id, body, model=current)
        assert run_job(warm, job.id) == JobState.SUCCEEDED, error_of(db, job.id)
        with db.read() as session:
            result = session.get_one(Job, job.id).result
        assert result is not None
        return result

    first = enlarge()
    old_facts = model_of(db, model.id).sr_head
    assert old_facts is not None and first["noise_amp"] == pytest.approx(old_facts["noise_amp"])
    # a new head in its place, trained longer (other weights, another noise amplitude)
    head_params = {"factor": 2.0, "iterations": 6, "replace": True, "seed": 9}
    job = submit_job(
        db,
        storage,
        settings,
        JobKind.TRAIN_SR_HEAD,
        owner.owner_id,
        head_params,
        model=model_of(db, model.id),
    )
    assert run_job(long_ctx, job.id) == JobState.SUCCEEDED, error_of(db, job.id)
    new_facts = model_of(db, model.id).sr_head
    assert new_facts is not None and new_facts["sha256"] != old_facts["sha256"]
    reads: list[str] = warm.storage.reads  # type: ignore[attr-defined]
    reads.clear()
    second = enlarge()
    assert new_facts["key"] in reads  # the new head was read, not the cached one served
    assert second["noise_amp"] == pytest.approx(new_facts["noise_amp"])
    assert warm.models is not None
    heads = [k for k in warm.models.cached_keys() if k.part == "sr_head"]
    assert len(heads) == 1 and new_facts["sha256"] in heads[0].version  # the old head left the cache


class DeletingDatabase:
    """The worker's database; the first read after a claim deletes the model first (a DELETE racing the
    job, between its claim and its model's load)."""

    def __init__(self, real: Any, delete: Any) -> None:
        self.real, self.delete, self.claimed = real, delete, False

    def transaction(self) -> Any:
        self.claimed = True
        return self.real.transaction()

    def read(self) -> Any:
        if self.claimed and self.delete is not None:
            delete, self.delete = self.delete, None
            delete()
        return self.real.read()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_deleted_model_leaves_the_cache_and_is_never_served(
    db: Any, storage: Any, settings: Any, long_ctx: WorkerContext, warm: WorkerContext, owner: Caller
) -> None:
    model = train(db, storage, settings, long_ctx, owner.owner_id)
    sample_bytes(db, storage, settings, warm, model)
    assert warm.models is not None and any(k.model_id == model.id for k in warm.models.cached_keys())
    job = submit_job(db, storage, settings, JobKind.SAMPLE, model.owner_id, {"n": 1}, model=model)
    services = Services(settings, db, storage, RecordingQueue())
    racing = dataclasses.replace(
        warm, db=DeletingDatabase(db, lambda: service.delete_model(services, model_of(db, model.id)))
    )
    assert run_job(racing, job.id) is None  # the model went away: nothing drawn, nothing stored
    assert not any(k.model_id == model.id for k in warm.models.cached_keys())
    with db.read() as session:
        assert session.get(Job, job.id) is None and session.get(Model, model.id) is None
