"""What each job kind asks of a request before anything is stored: the model's state, bounds that depend on
the model, and the defaults the model decides. A bad request is a 409/422 here, not a failed job later.

The request's own fields were already checked against `core.vocabulary` at the HTTP edge; these rules need
the model. `RULES` is the registry `core.submit` looks a kind up in.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from core import fair_share, vocabulary
from core.db import Database
from core.errors import Conflict, InvalidImage, InvalidParameter, NotFound, OutputTooLarge, SRHeadMissing
from core.images import ValidImage
from core.models import JobKind, JobState, Model, Sample
from core.settings import Settings
from core.training import stage_size
from core.training import top_stage_size as config_top_size
from engine.spec import check_image_size, request_config, sr_max_factor, sr_request_problems

Params = dict[str, Any]


@dataclass(frozen=True)
class RuleContext:
    """What a rule may consult beyond the request: the service's limits, and rows it must look up."""

    settings: Settings
    db: Database


class KindRules(Protocol):
    uploads: Mapping[str, str]  # multipart field -> the job file it is stored as (models/{m}/jobs/{j}/...)

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        """Raise Conflict/InvalidParameter for a request this model cannot serve; return the job's params
        with the model-dependent defaults filled in."""
        ...


def invalid(field: str, message: str, short: str | None = None, where: str = "body") -> InvalidParameter:
    """`where`: the request part the field came in (`body`, or `query` for GET /v1/estimate)."""
    return InvalidParameter(message, errors=[{"loc": [where, field], "msg": short or message}])


def require_trained(model: Model | None, what: str) -> Model:
    train_job = model.train_job if model else None
    if (
        model is None
        or train_job is None
        or train_job.state != JobState.SUCCEEDED
        or not model.checkpoint_key
    ):
        state = train_job.state if train_job else "missing"
        raise Conflict(f"the model is {state}; {what} once its training succeeded", state=state)
    return model


def model_stages(model: Model) -> int | None:
    """Stages the model's checkpoint holds: all it planned, or fewer when its training was canceled with
    keep_trained_stages."""
    if model.stages_trained is not None:
        return model.stages_trained
    stages = (model.train_config or {}).get("train_stages")
    return int(stages) if stages is not None else None


def model_stages_planned(model: Model) -> int | None:
    stages = (model.train_config or {}).get("train_stages")
    return int(stages) if stages is not None else None


def check_stage_index(model: Model, field: str, value: int) -> None:
    stages = model_stages(model)
    if stages is not None and not 0 <= value < stages:
        raise invalid(
            field,
            f"{field} must be between 0 and {stages - 1}: the model has {stages} stages",
            f"must be < {stages}",
        )


def top_stage_size(model: Model) -> tuple[int, int]:
    """(H, W) the model renders at: its training image fitted into max_size, as the engine computed it; for
    a model that kept fewer stages than planned, its last trained stage's size."""
    config = model.train_config or {}
    if model.stages_trained is not None:
        return stage_size(model.image_height, model.image_width, config, model.stages_trained - 1)
    return config_top_size(model.image_height, model.image_width, config)


def model_max_sr_factor(model: Model, max_output_pixels: int) -> float:
    """The largest factor the model's own image (its top stage) can be enlarged by within the caps."""
    height, width = top_stage_size(model)
    return sr_max_factor(height, width, max_output_pixels)


class TrainRules:
    """The engine's own rules, so a training that could never run is a 422 now, not a failed job later."""

    uploads: Mapping[str, str] = {}  # the image is the model's own input (models/{m}/input.png)

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        try:
            config = request_config(params)
        except ValueError as e:
            raise InvalidParameter(str(e), errors=[{"loc": ["body"], "msg": str(e)}]) from e
        image = uploads["image"]
        try:
            check_image_size(image.height, image.width, config)
        except ValueError as e:
            raise InvalidImage(str(e), errors=[{"loc": ["body", "image"], "msg": str(e)}]) from e
        check_head_request(config.mode, params)
        return params


class SampleRules:
    uploads: Mapping[str, str] = {}

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        trained = require_trained(model, "samples can be drawn")
        check_stage_index(trained, "start_stage", int(params.get("start_stage", 0)))
        return params


class HarmonizeRules:
    uploads: Mapping[str, str] = {"naive": vocabulary.NAIVE_FILE, "mask": vocabulary.MASK_FILE}

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        trained = require_trained(model, "harmonizations can be made")
        check_stage_index(trained, "stage", int(params.get("stage", 0)))
        if params.get("fine_tune_iters") is not None and not params.get("fine_tune"):
            message = "fine_tune_iters is only used with fine_tune=true"  # rather than silently not tuning
            raise invalid("fine_tune_iters", message)
        check_pair(uploads["naive"], uploads["mask"])
        completed = {key: value for key, value in params.items() if key != "fine_tune_iters"}
        if params.get("fine_tune"):
            completed["fine_tune_iters"] = params.get("fine_tune_iters") or default_fine_tune_iters(trained)
        return completed


def default_fine_tune_iters(model: Model) -> int:
    defaults = vocabulary.FINE_TUNE_ITERS_DEFAULT
    return defaults.get(model.params.get("preset", "paper"), defaults["paper"])


def check_pair(naive: ValidImage, mask: ValidImage) -> None:
    """Mirrors the engine's checks (same size; a mask with some pixel above half grey)."""
    if (naive.width, naive.height) != (mask.width, mask.height):
        raise invalid(
            "mask",
            f"the mask is {mask.width}x{mask.height} but the naive image is {naive.width}x{naive.height}; "
            "they must be the same size",
            f"must be {naive.width}x{naive.height}",
        )
    if mask_is_empty(mask.png):
        raise invalid(
            "mask",
            "the mask is empty: mark the pasted object in white (above 50% grey) on black",
            "no pixel above 50% grey",
        )


def mask_is_empty(mask_png: bytes) -> bool:
    """True when no pixel's mean of R, G and B is above 127.5 (the engine's threshold at half)."""
    with Image.open(io.BytesIO(mask_png)) as image:
        rgb = image.convert("RGB")
    # Integer sums: mean > 127.5 <=> R + G + B >= 383. "L" with equal weights rounds sum/3, and no sum
    # lands on a .5 there, so L >= 128 is the same test without Python loops over the pixels.
    gray = rgb.convert("L", matrix=(1 / 3, 1 / 3, 1 / 3, 0))
    return gray.point(lambda v: 255 if v >= 128 else 0).getbbox() is None


class AnimateRules:
    uploads: Mapping[str, str] = {}

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        trained = require_trained(model, "animations can be made")
        check_stage_index(trained, "start_stage", int(params.get("start_stage", 0)))
        height, width = top_stage_size(trained)
        frames, cap = int(params["frames"]), vocabulary.ANIMATION_MAX_FRAME_PIXELS
        if frames * height * width > cap:
            most = max(cap // (height * width), 0)
            raise invalid(
                "frames",
                f"{frames} frames of {width}x{height} are {frames * height * width:,} pixels; at most "
                f"{cap:,} are rendered in one animation, so this model allows up to {most} frames",
                f"at most {most} for this model",
            )
        return params


def check_sr_mode(mode: str, field: str, where: str = "body") -> None:
    if mode not in vocabulary.SR_MODES:
        raise invalid(
            field,
            f"a {mode} model gets no super-resolution head: heads are trained on "
            f"{', '.join(vocabulary.SR_MODES)} models, whose samples show the scene's texture",
            where=where,
        )


def check_head_request(mode: str, params: Mapping[str, Any], where: str = "body") -> None:
    """A training's `sr_factor`/`sr_iters` (a head trained after the model): the training and its estimate
    refuse the same requests."""
    if params.get("sr_factor") is not None:
        check_sr_mode(mode, "sr_factor", where)
    elif params.get("sr_iters") is not None:
        message = "sr_iters is only used with sr_factor (which trains a super-resolution head)"
        raise invalid("sr_iters", message, where=where)


class TrainSRHeadRules:
    """A head for a model trained earlier (or a new one in place of its old one, with `replace`)."""

    uploads: Mapping[str, str] = {}

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        trained = require_trained(model, "a super-resolution head can be trained")
        check_sr_mode((trained.train_config or {}).get("mode", "generation"), "model")
        if trained.stages_trained is not None:
            raise Conflict(
                f"the model kept {trained.stages_trained} of its {model_stages_planned(trained)} stages when its "
                "training was canceled; a super-resolution head is trained on a complete pyramid",
                state="partial-model",
            )
        training = next((j for j in trained.sr_head_jobs if j.state in fair_share.UNFINISHED), None)
        if training is not None:
            raise Conflict(
                f"a super-resolution head is already {training.state} for this model (job {training.id}); "
                "wait for it, or cancel it with POST /v1/jobs/{id}/cancel",
                state="sr-head-training",
                job_id=training.id,
            )
        if trained.sr_head and not params.get("replace"):
            raise Conflict(
                f"the model already has a super-resolution head (x{trained.sr_head['sr_train']:g}); "
                "send replace=true to train a new one in its place",
                state="has-sr-head",
            )
        return params


class SuperResolveRules:
    uploads: Mapping[str, str] = {}

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        trained = require_trained(model, "its image can be super-resolved")
        head = trained.sr_head
        if not head:
            raise SRHeadMissing(
                "the model has no super-resolution head: train one with POST "
                f"/v1/models/{trained.id}/sr-head (about one more stage of training), or create models with "
                "sr_factor to train it with the model"
            )
        factor = float(params.get("factor") or head["sr_train"])
        height, width = self._start_size(trained, params, context)
        cap = context.settings.max_sr_output_pixels
        problems = sr_request_problems(height, width, factor, cap)
        if problems:
            raise OutputTooLarge(
                problems[0],
                errors=[{"loc": ["body", "factor"], "msg": problems[0]}],
                max_factor=sr_max_factor(height, width, cap),
            )
        return {**params, "factor": factor}

    @staticmethod
    def _start_size(model: Model, params: Params, context: RuleContext) -> tuple[int, int]:
        """(h, w) of the image to enlarge: the model's top training image, or one of its samples."""
        sample_id = params.get("sample_id")
        if sample_id is None:
            return top_stage_size(model)
        with context.db.read() as session:
            sample = session.get(Sample, sample_id)
        if sample is None or sample.model_id != model.id:
            raise NotFound(f"model {model.id!r} has no sample {sample_id!r}")
        return sample.height, sample.width


class PaintRules:
    """Paint-to-image: the painting enters at a stage 1 .. last of a model trained on the photo."""

    uploads: Mapping[str, str] = {"painting": vocabulary.PAINTING_FILE}

    def complete(
        self, model: Model | None, params: Params, uploads: Mapping[str, ValidImage], context: RuleContext
    ) -> Params:
        trained = require_trained(model, "paintings can be rendered")
        mode = (trained.train_config or {}).get("mode") or trained.params.get("mode", "generation")
        if mode not in vocabulary.PAINT_MODES:
            raise invalid(
                "model",
                f"a {mode} model cannot turn a painting into an image: paint-to-image needs a model trained "
                f"on the photo in one of the modes {', '.join(vocabulary.PAINT_MODES)} (a {mode} model's "
                "generator learned to restyle a pasted object, not to add texture to a layout)",
                f"a {mode} model cannot paint",
            )
        stage = int(params.get("stage", vocabulary.PAINT_STAGE_DEFAULT))
        stages = model_stages(trained)
        if stage < vocabulary.PAINT_STAGE_MIN or (stages is not None and stage >= stages):
            top = f"{stages - 1}: the model has {stages} stages" if stages is not None else "the last stage"
            raise invalid(
                "stage",
                f"stage must be between 1 and {top}; the painting replaces what the stages below it draw, so "
                "stage 0 has nothing to replace",
                "must be >= 1 and below the model's stage count",
            )
        return params


RULES: dict[JobKind, KindRules] = {
    JobKind.TRAIN: TrainRules(),
    JobKind.SAMPLE: SampleRules(),
    JobKind.HARMONIZE: HarmonizeRules(),
    JobKind.ANIMATE: AnimateRules(),
    JobKind.TRAIN_SR_HEAD: TrainSRHeadRules(),
    JobKind.SUPER_RESOLVE: SuperResolveRules(),
    JobKind.PAINT: PaintRules(),
}
