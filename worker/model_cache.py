"""The interactive lane's loaded models: an LRU cache bounded by a byte budget (docs/lanes.md).

A warm worker serves the second request for a model without reading storage. An entry's key is the model's
id, the part (its trained pyramid or its super-resolution head) and a VERSION read from the model's row:
whatever writes a new checkpoint or head changes the row (the train job's id/attempt/finish time; the head's
facts, which hold the sha256 of its bytes), so a changed model is a miss, never a stale hit. Loading a new
version drops the older ones of the same model and part at once; `forget(model_id)` drops a deleted
model's entries.

Sizes are the stored blob's bytes (safetensors: the tensors themselves), which is what the loaded tensors
take on the device. Values are shared between jobs: runners must not modify them (the engine's fine-tuning
copies the model first, and fine-tuned harmonizations run in the long lane, which has no cache).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from core.models import Model
from worker import metrics

T = TypeVar("T")
Part = Literal["trained", "sr_head"]


@dataclass(frozen=True)
class CacheKey:
    model_id: str
    part: Part
    version: str


def trained_version(model: Model) -> str:
    """Changes whenever the model's checkpoint may have: its key, or another (attempt of a) train job
    finishing."""
    train = model.train_job
    facts = {
        "checkpoint_key": model.checkpoint_key,
        "train_job": None if train is None else [train.id, train.attempts, str(train.finished_at)],
    }
    return json.dumps(facts, sort_keys=True)


def sr_head_version(model: Model) -> str:
    """The head's facts (with its sha256, see worker.artifacts.store_sr_head) and the model it was trained
    on: a replaced head or a retrained model is a new version."""
    return json.dumps({"head": model.sr_head, "trained": trained_version(model)}, sort_keys=True)


@dataclass
class _Entry:
    value: Any
    size: int


class ModelCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def get(self, key: CacheKey, load: Callable[[], tuple[T, int]]) -> T:
        """The cached value of `key`, or `load()` -> (value, size in bytes), kept when it fits the budget."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                metrics.observe_cache("hit", key.part)
                return entry.value  # type: ignore[no-any-return]
        metrics.observe_cache("miss", key.part)
        value, size = load()
        with self._lock:
            self._drop(lambda k: k.model_id == key.model_id and k.part == key.part, "stale")
            if size <= self.budget_bytes:
                self._entries[key] = _Entry(value, size)
                self.bytes += size
                while self.bytes > self.budget_bytes:
                    oldest = next(iter(self._entries))
                    self._remove(oldest, "budget")
            self._report()
        return value

    def forget(self, model_id: str) -> None:
        """Drop a (deleted) model's entries."""
        with self._lock:
            self._drop(lambda k: k.model_id == model_id, "deleted")
            self._report()

    def cached_keys(self) -> list[CacheKey]:
        """Least recently used first."""
        with self._lock:
            return list(self._entries)

    def _drop(self, matches: Callable[[CacheKey], bool], reason: str) -> None:
        for key in [k for k in self._entries if matches(k)]:
            self._remove(key, reason)

    def _remove(self, key: CacheKey, reason: str) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.size
        metrics.observe_cache_eviction(reason, key.part)

    def _report(self) -> None:
        metrics.set_cache_size(self.bytes, len(self._entries), self.budget_bytes)
