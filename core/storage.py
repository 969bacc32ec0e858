"""Object storage: one small interface, a local-folder backend and an S3 backend (AWS, MinIO, moto).

Keys are built here from ids only (never from user text) and checked against one pattern before use.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.ids import is_valid_id
from core.infra import STORAGE, StillUnavailable, retry_unavailable
from core.settings import Settings
from core.vocabulary import JOB_FILE_NAMES

# an extension may hold a digit after its first letter: .mp4
KEY_PATTERN = re.compile(
    r"^(models|jobs)/[a-z]{2,4}_[0-9a-f]{28}(/[a-z0-9_]+)*/?[a-z0-9_]*(\.[a-z][a-z0-9]{1,11})?$"
)
CHUNK_BYTES = 1024 * 1024
T = TypeVar("T")
log = logging.getLogger(__name__)


class ObjectNotFound(KeyError):
    pass


def _checked_id(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError(f"not a resource id: {value!r}")
    return value


def model_prefix(model_id: str) -> str:
    return f"models/{_checked_id(model_id)}/"


def input_key(model_id: str) -> str:
    return model_prefix(model_id) + "input.png"


def checkpoint_key(model_id: str) -> str:
    return model_prefix(model_id) + "checkpoint.safetensors"


def sr_head_key(model_id: str, job_id: str, attempt: int) -> str:
    """One attempt's head (the model's row names the live one): a replacement, or an attempt that loses its
    commit, never overwrites the head that enlargements and warm workers' caches are reading. (Models from
    before this kept theirs at models/{id}/sr_head.safetensors; their rows still name it.)"""
    return model_prefix(model_id) + f"sr_heads/{_checked_id(job_id)}_{int(attempt)}.safetensors"


def stage_key(model_id: str, stage: int) -> str:
    return model_prefix(model_id) + f"stages/{int(stage)}.safetensors"


def stage_preview_key(model_id: str, stage: int) -> str:
    """One image drawn by the model after `stage` finished (what the page shows while training goes on)."""
    return model_prefix(model_id) + f"stages/{int(stage)}.png"


def sample_key(model_id: str, sample_id: str) -> str:
    return model_prefix(model_id) + f"samples/{_checked_id(sample_id)}.png"


def job_prefix(job_id: str) -> str:
    return f"jobs/{_checked_id(job_id)}/"


# A job's own files (a harmonization's inputs, result and fine-tuned checkpoint, an animation, ...) live beside
# its model, models/{model_id}/jobs/{job_id}/..., so deleting the model (one prefix) removes them with it.


def job_objects_prefix(model_id: str, job_id: str) -> str:
    return model_prefix(model_id) + f"jobs/{_checked_id(job_id)}/"


def job_object_key(model_id: str, job_id: str, name: str) -> str:
    if name not in JOB_FILE_NAMES:
        raise ValueError(f"not a job object: {name!r}")
    return job_objects_prefix(model_id, job_id) + name


def job_output_key(model_id: str, job_id: str, attempt: int, name: str) -> str:
    """A file a job attempt produced: per attempt, so an attempt that lost can delete its own outputs
    without touching those of the attempt that won."""
    if name not in JOB_FILE_NAMES:
        raise ValueError(f"not a job object: {name!r}")
    return job_objects_prefix(model_id, job_id) + f"a{int(attempt)}/{name}"


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key) or ".." in key:
        raise ValueError(f"not a storage key: {key!r}")
    return key


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def iter_chunks(self, key: str) -> Iterator[bytes]: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int:
        """Bytes of the object (a HEAD request's Content-Length); ObjectNotFound when missing."""
        ...

    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def list_objects(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        """(key, last modified) of every object under `prefix` (the orphan sweep)."""
        ...

    def presigned_url(self, key: str) -> str | None:
        """A time-limited download URL, or None when downloads must go through the API."""
        ...

    def check(self) -> None:
        """Raise if the storage cannot be reached (readiness probe)."""
        ...


class LocalStorage:
    """Objects as files under one root; writes go to a temp file and are renamed, so readers never see halves."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key escapes the storage root: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as e:
            raise ObjectNotFound(key) from e

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        try:
            f = self._path(key).open("rb")
        except FileNotFoundError as e:
            raise ObjectNotFound(key) from e
        with f:
            while chunk := f.read(CHUNK_BYTES):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as e:
            raise ObjectNotFound(key) from e

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        folder = self._path(prefix.rstrip("/"))
        if not folder.exists():
            return 0
        files = [p for p in folder.rglob("*") if p.is_file()]
        for p in files:
            p.unlink(missing_ok=True)
        for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
            d.rmdir()
        folder.rmdir()
        return len(files)

    def list_objects(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        folder = self.root / prefix
        if not folder.is_dir():
            return
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
                yield str(path.relative_to(self.root)), modified

    def presigned_url(self, key: str) -> str | None:
        return None

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"storage folder {self.root} is not writable")


class S3Storage:
    def __init__(self, settings: Settings, client: Any = None) -> None:
        import boto3  # imported here: the local backend should not pay for boto3's import
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.expiry_s = settings.presign_expiry_s

        def client_at(endpoint_url: str | None) -> Any:
            return boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id,
                aws_secret_access_key=settings.s3_secret_access_key,
                # Bounded: a storage that refuses or stops answering costs a few seconds, then the caller sees
                # an unavailable error (the API a 503, the worker its own retry); botocore's defaults wait 60 s.
                config=Config(
                    connect_timeout=settings.storage_connect_timeout_s,
                    read_timeout=settings.storage_read_timeout_s,
                    retries={"max_attempts": settings.storage_max_attempts, "mode": "standard"},
                    signature_version="s3v4",
                ),
            )

        self.client = client or client_at(settings.s3_endpoint_url)
        # Presigning is local (no request): a client at the address browsers and other clients reach signs
        # for that host, while the service itself talks to storage at its own address.
        public = settings.s3_public_endpoint_url
        self.presigner = client_at(public) if public else self.client

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except self.client.exceptions.NoSuchKey as e:
            raise ObjectNotFound(key) from e
        body: bytes = response["Body"].read()
        return body

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except self.client.exceptions.NoSuchKey as e:
            raise ObjectNotFound(key) from e
        yield from response["Body"].iter_chunks(CHUNK_BYTES)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFound(key) from e
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix)
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys: list[Any] = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def list_objects(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["LastModified"]

    def presigned_url(self, key: str) -> str | None:
        url: str = self.presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=self.expiry_s
        )
        return url

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket if missing (tests, first start against a fresh MinIO)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


class RetryingStorage:
    """A storage whose calls are retried while the storage is unavailable (refused, timed out, 5xx), for up
    to `budget_s` each; then `core.infra.StillUnavailable`. The worker's: a blink must not fail a job. The API
    keeps the plain one (its client gets a 503 at once and retries itself)."""

    def __init__(self, inner: Storage, budget_s: float) -> None:
        self.inner, self.budget_s = inner, budget_s

    def put(self, key: str, data: bytes, content_type: str) -> None:
        retry_unavailable(lambda: self.inner.put(key, data, content_type), self.budget_s, "storage put")

    def get(self, key: str) -> bytes:
        return retry_unavailable(lambda: self.inner.get(key), self.budget_s, "storage get")

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        return self.inner.iter_chunks(key)

    def exists(self, key: str) -> bool:
        return retry_unavailable(lambda: self.inner.exists(key), self.budget_s, "storage exists")

    def size(self, key: str) -> int:
        return retry_unavailable(lambda: self.inner.size(key), self.budget_s, "storage size")

    def delete(self, key: str) -> None:
        retry_unavailable(lambda: self.inner.delete(key), self.budget_s, "storage delete")

    def delete_prefix(self, prefix: str) -> int:
        return retry_unavailable(lambda: self.inner.delete_prefix(prefix), self.budget_s, "storage delete")

    def list_objects(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        listed = retry_unavailable(
            lambda: list(self.inner.list_objects(prefix)), self.budget_s, "storage list"
        )
        return iter(listed)

    def presigned_url(self, key: str) -> str | None:
        return self.inner.presigned_url(key)

    def check(self) -> None:
        self.inner.check()


class DeadlineStorage:
    """A storage whose writes (put, delete, delete_prefix) end within `deadline_s`, whatever the storage does:
    the API's. A storage that accepts connections and never answers would otherwise hold a request for
    botocore's connect + read timeouts times its attempts (~20 s), and the client, gone by then, would never
    learn of the model it created. Past the deadline the call raises `StillUnavailable("storage")` (a 503
    with Retry-After) and the write goes on in its thread, abandoned: a put that completes after all
    deletes its own object (the request that asked for it has created no row pointing at it; if that delete
    fails too, the object has no row and the orphan sweep removes it). Reads are not wrapped: they create
    nothing, and botocore's bounded timeouts end them."""

    def __init__(self, inner: Storage, deadline_s: float, max_threads: int = 16) -> None:
        self.inner, self.deadline_s = inner, deadline_s
        # A silent storage keeps each abandoned write's thread for botocore's whole timeout; a full pool
        # makes new writes wait in its queue, and the deadline counts that wait too.
        self.pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="storage-write")

    def _within_deadline(self, write: Callable[[], T], undo: Callable[[], object] | None, what: str) -> T:
        lock = threading.Lock()
        state = {"abandoned": False, "finished": False}

        def run() -> T:
            with lock:
                if state["abandoned"]:  # waited in the pool's queue past the deadline: never start it
                    raise TimeoutError("abandoned before it started")
            result = write()
            with lock:
                state["finished"] = True
                late = state["abandoned"]
            if late and undo is not None:
                log.warning("a storage write finished after its deadline; undoing it", extra={"what": what})
                try:
                    undo()
                except Exception:  # no row points at it: the orphan sweep removes it
                    log.warning("could not undo a late storage write", extra={"what": what}, exc_info=True)
            return result

        future = self.pool.submit(run)
        try:
            return future.result(timeout=self.deadline_s)
        except FutureTimeout as e:
            with lock:
                state["abandoned"] = not state["finished"]
                abandoned = state["abandoned"]
            if not abandoned:  # finished in the instant between the timeout and the lock: it counts
                return future.result()
            raise StillUnavailable(
                STORAGE, self.deadline_s, TimeoutError(f"{what}: no answer within {self.deadline_s:g} s")
            ) from e

    def close(self) -> None:
        """Stop taking writes; those running finish in their threads (a late one still undoes itself)."""
        self.pool.shutdown(wait=False, cancel_futures=True)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._within_deadline(
            lambda: self.inner.put(key, data, content_type), lambda: self.inner.delete(key), "storage put"
        )

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        return self.inner.iter_chunks(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def delete(self, key: str) -> None:
        self._within_deadline(lambda: self.inner.delete(key), None, "storage delete")

    def delete_prefix(self, prefix: str) -> int:
        return self._within_deadline(lambda: self.inner.delete_prefix(prefix), None, "storage delete")

    def list_objects(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        return self.inner.list_objects(prefix)

    def presigned_url(self, key: str) -> str | None:
        return self.inner.presigned_url(key)

    def check(self) -> None:
        self.inner.check()


def make_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.storage_dir)
