"""The `super_resolve` job: SinGAN's loop with the model's SR head (K passes of one upsampling step and the
head with fresh noise, then a top-left crop), on the model's top training image or one of its samples; n
independent noise draws, each stored as a PNG."""

from __future__ import annotations

import warnings
from typing import Any

import engine
from core.models import Job, JobState, Model
from core.vocabulary import SR_FILES
from engine.spec.srmath import sr_schedule
from worker import outcomes
from worker.artifacts import Stored, load_sample, load_sr_head, load_trained, store_job_file
from worker.runtime import WorkerContext


def run(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    params = job.params
    factor, noise_scale = float(params["factor"]), float(params.get("noise_scale", 1.0))
    try:
        trained = load_trained(ctx, model)
        head = load_sr_head(ctx, model)
        source = load_sample(ctx, model, params["sample_id"]) if params.get("sample_id") else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            images = engine.super_resolve(
                trained,
                head,
                factor,
                n=int(params.get("n", 1)),
                rng=engine.make_rng(int(params.get("seed", 0)), trained.device),
                noise_scale=noise_scale,
                source=source,
                max_output_pixels=ctx.settings.max_sr_output_pixels,
            ).cpu()  # [n, 3, ⌊f·h⌋, ⌊f·w⌋]
    except ValueError as e:
        return outcomes.fail(ctx, job, str(e))
    stored = Stored()
    for name, image in zip(SR_FILES, images, strict=False):
        store_job_file(ctx, job, name, engine.to_png_bytes(image), stored)
    start = trained.stage_shapes[-1] if source is None else tuple(source.shape[-2:])
    result = _result(job, stored, start, images.shape[-2:], factor, head.noise_amp * noise_scale)
    result["warnings"] = [str(w.message) for w in caught]
    return outcomes.commit_result(ctx, job, owned_keys=stored.owned_keys, result=result)


def _result(
    job: Job, stored: Stored, start: tuple[int, ...], out: Any, factor: float, noise_amp: float
) -> dict[str, Any]:
    passes, step, _ = sr_schedule(factor)
    return {
        "attempt": job.attempts,
        "files": stored.files,
        "input_width": int(start[1]),
        "input_height": int(start[0]),
        "width": int(out[1]),
        "height": int(out[0]),
        "factor": factor,
        "passes": passes,
        "step": step,
        "noise_amp": noise_amp,
    }
