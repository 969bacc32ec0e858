"""Harmonization jobs: check a naive image and its mask, store them, and queue the job.

The checks here mirror the engine's (engine/harmonization.py) so a bad pair is a 422 at the API, before
anything is stored, instead of a failed job minutes later: same size, a mask that is not empty after
thresholding at half grey (the mean of R, G, B above 127.5, as the engine does), and a stage the model has.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

from PIL import Image
from sqlalchemy.orm import Session

from core import jobs
from core.errors import Conflict, InvalidParameter
from core.images import ValidImage
from core.models import Job, JobKind, JobState, Model
from core.queue import JobQueue
from core.service import _send_after_commit
from core.storage import Storage, job_object_key, job_objects_prefix

log = logging.getLogger(__name__)

NAIVE, MASK, RESULT, CHECKPOINT = "naive.png", "mask.png", "result.png", "checkpoint.safetensors"
# Fine-tuning iterations when the request leaves them out: about a tenth of a stage's training, as in the
# original's harmonization fine-tuning, and a tenth of the quick preset's 200 x 3 for a CPU model.
FINE_TUNE_ITERS_DEFAULT = {"paper": 500, "quick": 50}
FINE_TUNE_ITERS_MAX = 5000


def require_trained(model: Model) -> None:
    train_job = model.train_job
    if train_job is None or train_job.state != JobState.SUCCEEDED or not model.checkpoint_key:
        state = train_job.state if train_job else "missing"
        raise Conflict(
            f"the model is {state}; harmonizations can be made once its training succeeded", state=state
        )


def model_stages(model: Model) -> int | None:
    stages = (model.train_config or {}).get("train_stages")
    return int(stages) if stages is not None else None


def check_stage(model: Model, stage: int) -> None:
    stages = model_stages(model)
    if stages is not None and not 0 <= stage < stages:
        raise InvalidParameter(
            f"stage must be between 0 and {stages - 1}: the model has {stages} stages",
            errors=[{"loc": ["body", "stage"], "msg": f"must be < {stages}"}],
        )


def default_fine_tune_iters(model: Model) -> int:
    preset = str(model.params.get("preset", "paper"))
    return FINE_TUNE_ITERS_DEFAULT.get(preset, FINE_TUNE_ITERS_DEFAULT["paper"])


def mask_is_empty(mask_png: bytes) -> bool:
    """True when no pixel's mean of R, G and B is above 127.5 (the engine's threshold at half)."""
    with Image.open(io.BytesIO(mask_png)) as image:
        rgb = image.convert("RGB")
    # Integer sums: mean > 127.5 <=> R + G + B >= 383. "L" with equal weights rounds sum/3, and no sum
    # lands on a .5 there, so L >= 128 is the same test without Python loops over the pixels.
    gray = rgb.convert("L", matrix=(1 / 3, 1 / 3, 1 / 3, 0))
    return gray.point(lambda v: 255 if v >= 128 else 0).getbbox() is None


def check_pair(naive: ValidImage, mask: ValidImage) -> None:
    if (naive.width, naive.height) != (mask.width, mask.height):
        raise InvalidParameter(
            f"the mask is {mask.width}x{mask.height} but the naive image is {naive.width}x{naive.height}; "
            "they must be the same size",
            errors=[{"loc": ["body", "mask"], "msg": f"must be {naive.width}x{naive.height}"}],
        )
    if mask_is_empty(mask.png):
        raise InvalidParameter(
            "the mask is empty: mark the pasted object in white (above 50% grey) on black",
            errors=[{"loc": ["body", "mask"], "msg": "no pixel above 50% grey"}],
        )


def create_harmonization_job(
    session: Session,
    storage: Storage,
    queue: JobQueue,
    model: Model,
    naive: ValidImage,
    mask: ValidImage,
    params: dict[str, Any],
    before_commit: Callable[[Job], None] | None = None,
) -> Job:
    """The row is flushed (not visible) to get its id, the inputs are stored under it, then the row is
    committed and the task sent. Any failure before the commit removes the objects written so far."""
    require_trained(model)
    check_stage(model, int(params.get("stage", 0)))
    check_pair(naive, mask)
    job = jobs.create_job(session, model, JobKind.HARMONIZE, params)
    try:
        storage.put(job_object_key(model.id, job.id, NAIVE), naive.png, "image/png")
        storage.put(job_object_key(model.id, job.id, MASK), mask.png, "image/png")
        if before_commit:
            before_commit(job)
        session.commit()
    except BaseException:
        session.rollback()
        storage.delete_prefix(job_objects_prefix(model.id, job.id))
        raise
    log.info("harmonization job created", extra={"model_id": model.id, "job_id": job.id})
    _send_after_commit(session, queue, job)
    return job
