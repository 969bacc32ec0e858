"""What job kinds read and write besides rows: the model's checkpoint, sample images, a job's output files.

Writers store objects and return what `outcomes.commit_result` needs (rows and the keys this attempt owns);
nothing here commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

import engine
from core.models import Job, Model, Sample, utcnow
from core.service import new_sample_id
from core.storage import job_output_key, sample_key, sr_head_key
from core.vocabulary import MEDIA_TYPES, SAMPLE_BATCH, SR_FACTOR_DEFAULT
from engine.spec import head_preset
from worker.model_cache import CacheKey, sr_head_version, trained_version
from worker.runtime import WorkerContext


class MissingCheckpoint(ValueError):
    """Something a job reads is not there (a ValueError: the job fails with the reason)."""


def load_trained(ctx: WorkerContext, model: Model) -> engine.TrainedModel:
    """The model's trained pyramid; from the interactive lane's cache when it holds this version. Shared
    between jobs there: do not modify it."""
    checkpoint = model.checkpoint_key
    if not checkpoint:
        raise MissingCheckpoint("the model has no checkpoint; train it first")

    def load() -> tuple[engine.TrainedModel, int]:
        blob = ctx.storage.get(checkpoint)
        return engine.checkpoint.from_bytes(blob, device=ctx.device), len(blob)

    if ctx.models is None:
        return load()[0]
    return ctx.models.get(CacheKey(model.id, "trained", trained_version(model)), load)


def sample_in_batches(
    trained: engine.TrainedModel,
    n: int,
    rng: torch.Generator,
    scale: tuple[float, float] = (1.0, 1.0),
    start_stage: int = 0,
) -> torch.Tensor:
    """n samples drawn SAMPLE_BATCH at a time from one generator (reproducible for a seed): [n, 3, H, W] on CPU."""
    batches = []
    with torch.no_grad():
        for first in range(0, n, SAMPLE_BATCH):
            count = min(SAMPLE_BATCH, n - first)
            batches.append(
                engine.sample(trained, n=count, rng=rng, scale=scale, start_stage=start_stage).cpu()
            )
    return torch.cat(batches)


@dataclass
class Stored:
    """Objects one attempt wrote: the rows that will point at them, and the keys it alone owns."""

    rows: list[Sample] = field(default_factory=list)
    owned_keys: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # job output file names, for the job's `result`


def store_samples(ctx: WorkerContext, job: Job, model: Model, images: torch.Tensor, preview: bool) -> Stored:
    """images: [n, 3, H, W] in [-1, 1]. Each gets a new sample id, so its key belongs to this attempt."""
    stored = Stored()
    for image in images:
        sample_id = new_sample_id()
        png = engine.to_png_bytes(image)
        key = sample_key(model.id, sample_id)
        ctx.storage.put(key, png, "image/png")
        stored.owned_keys.append(key)
        stored.rows.append(
            Sample(
                id=sample_id,
                owner_id=model.owner_id,
                model_id=model.id,
                job_id=job.id,
                key=key,
                width=int(image.shape[-1]),
                height=int(image.shape[-2]),
                size_bytes=len(png),
                is_preview=preview,
                created_at=utcnow(),
            )
        )
    return stored


def store_job_file(ctx: WorkerContext, job: Job, name: str, data: bytes, stored: Stored) -> None:
    """One output file under this attempt's own prefix (`core.vocabulary` names it and its media type)."""
    key = job_output_key(job.model_id, job.id, job.attempts, name)
    ctx.storage.put(key, data, MEDIA_TYPES.get(name, "application/octet-stream"))
    stored.owned_keys.append(key)
    stored.files.append(name)


# --- super-resolution heads -----------------------------------------------------------------------------------


def sr_head_config(model: Model, factor: float | None, iterations: int | None) -> engine.SRConfig:
    """The head's config for this model: the preset matching the model's (a quick model gets a quick head),
    trained for `factor` (SinGAN's default x4) and, when given, `iterations`."""
    preset = head_preset(str(model.params.get("preset", "paper")))
    overrides: dict[str, object] = {"sr_train": float(factor or SR_FACTOR_DEFAULT)}
    if iterations:
        overrides["iterations"] = int(iterations)
    return engine.SRConfig.preset(preset, **overrides)  # type: ignore[arg-type]  # overrides: checked at run time


def store_sr_head(ctx: WorkerContext, model: Model, job: Job, head: engine.SRHead) -> dict[str, object]:
    """Writes the head beside the model, under this attempt's own key (`core.storage.sr_head_key`), and
    returns the facts the model's row keeps about it."""
    key = sr_head_key(model.id, job.id, job.attempts)
    blob = engine.checkpoint.sr_head_to_bytes(head)
    ctx.storage.put(key, blob, "application/octet-stream")
    return {
        "key": key,
        "sha256": hashlib.sha256(blob).hexdigest(),  # its version: a replaced head is a new cache entry
        "sr_train": head.sr_train,
        "passes": head.passes,
        "r0": head.r0,
        "noise_amp": float(head.noise_amp),
        "iterations": head.iterations_done,
        "trained_on": list(head.trained_on),
    }


def load_sr_head(ctx: WorkerContext, model: Model) -> engine.SRHead:
    """The model's super-resolution head; cached like `load_trained`."""
    if not model.sr_head:
        raise MissingCheckpoint("the model has no super-resolution head; train one first")
    key = str(model.sr_head["key"])

    def load() -> tuple[engine.SRHead, int]:
        blob = ctx.storage.get(key)
        return engine.checkpoint.sr_head_from_bytes(blob, device=ctx.device), len(blob)

    if ctx.models is None:
        return load()[0]
    return ctx.models.get(CacheKey(model.id, "sr_head", sr_head_version(model)), load)


def load_sample(ctx: WorkerContext, model: Model, sample_id: str) -> torch.Tensor:
    """One of the model's stored samples as an image: [1, 3, H, W] in [-1, 1] on the worker's device."""

    def read() -> Sample | None:
        with ctx.db.read() as session:
            return session.get(Sample, sample_id)

    sample = ctx.retry(read, "read the sample to enlarge")
    if sample is None or sample.model_id != model.id:
        raise MissingCheckpoint(f"sample {sample_id} is gone")  # deleted after the job was queued
    return engine.load_image(ctx.storage.get(sample.key)).to(ctx.device)
