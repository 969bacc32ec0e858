"""core never imports the engine, so the engine's words and the rules a request is checked against are written
again in core (core.vocabulary, core.training, core.sr_limits). This module, which may import both, holds
every one of them to the engine's: the API publishes bounds the engine really accepts, and refuses exactly
what the engine would refuse."""

from __future__ import annotations

from typing import Any

import pytest

import engine
from api.schemas import AnimationCreate, HarmonizationCreate, ModelCreate, SampleRequest
from core import vocabulary
from engine.image import ANIMATION_FORMATS
from engine.sampling import MAX_SCALE
from worker.kinds.train import training_config


def bounds(schema: type[Any], field: str) -> tuple[Any, Any]:
    props = schema.model_json_schema()["properties"][field]
    number = next((p for p in props.get("anyOf", [props]) if p.get("type") in ("integer", "number")), props)
    return number.get("minimum", number.get("exclusiveMinimum")), number.get("maximum")


def enum_of(schema: type[Any], field: str) -> set[str]:
    props = schema.model_json_schema()
    field_schema = props["properties"][field]
    ref = field_schema.get("$ref") or field_schema.get("allOf", [{}])[0].get("$ref")
    if ref:
        field_schema = props["$defs"][ref.rsplit("/", 1)[1]]
    return set(field_schema["enum"])


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("train_stages", *vocabulary.TRAIN_STAGES_RANGE),
        ("iters_per_stage", *vocabulary.ITERS_PER_STAGE_RANGE),
        ("max_size", *vocabulary.IMAGE_SIZE_RANGE),
    ],
)
def test_training_bounds_are_what_the_engine_accepts(field: str, low: int, high: int) -> None:
    assert bounds(ModelCreate, field) == (low, high)
    smallest = {"min_size": low} if field == "max_size" else {}
    for preset in vocabulary.PRESETS:
        for value in (low, high):
            training_config({"preset": preset, field: value, **smallest})  # accepted
        for value in (low - 1, high + 1):
            with pytest.raises(ValueError, match=field):
                training_config({"preset": preset, field: value, **smallest})


def test_modes_presets_and_composites_are_the_engines() -> None:
    assert enum_of(ModelCreate, "mode") == set(engine.MODES)
    assert enum_of(ModelCreate, "preset") == set(engine.PRESETS)
    assert enum_of(HarmonizationCreate, "composite") == set(engine.COMPOSITES)
    assert HarmonizationCreate.model_fields["composite"].default == vocabulary.DEFAULT_COMPOSITE


def test_stage_indexes_stop_below_the_largest_model() -> None:
    most = vocabulary.TRAIN_STAGES_RANGE[1]
    assert bounds(HarmonizationCreate, "stage")[1] == most - 1
    assert bounds(SampleRequest, "start_stage")[1] == most - 1
    assert bounds(AnimationCreate, "start_stage")[1] == most - 1


def test_service_limits_sit_inside_the_engines() -> None:
    low, high = vocabulary.SAMPLE_SCALE_RANGE
    assert 0 < low <= high <= MAX_SCALE
    assert bounds(SampleRequest, "scale_w") == (low, high)
    assert (
        bounds(SampleRequest, "n") == (1, vocabulary.SAMPLES_PER_JOB_MAX)
        and vocabulary.SAMPLES_PER_JOB_MAX <= 256
    )
    assert bounds(AnimationCreate, "frames")[1] <= 1000  # engine.animate's own limit
    assert enum_of(AnimationCreate, "format") == set(vocabulary.ANIMATION_FORMATS) <= set(ANIMATION_FORMATS)
    first, last = vocabulary.FINE_TUNE_ITERS_RANGE
    assert bounds(HarmonizationCreate, "fine_tune_iters") == (first, last)
    assert set(vocabulary.FINE_TUNE_ITERS_DEFAULT) == set(engine.PRESETS)
    assert all(first <= n <= last for n in vocabulary.FINE_TUNE_ITERS_DEFAULT.values())


def test_every_output_file_has_a_media_type() -> None:
    outputs = vocabulary.JOB_FILE_NAMES - {
        vocabulary.NAIVE_FILE,
        vocabulary.MASK_FILE,
        vocabulary.PAINTING_FILE,
    }
    assert outputs == set(vocabulary.MEDIA_TYPES)


def test_super_resolution_bounds_are_the_engines() -> None:
    from api.schemas import SRHeadCreate, SuperResolutionCreate
    from core.settings import Settings
    from engine import srmath
    from engine.sr.inference import MAX_VARIANTS

    for schema, field in (
        (ModelCreate, "sr_factor"),
        (SRHeadCreate, "factor"),
        (SuperResolutionCreate, "factor"),
    ):
        assert bounds(schema, field) == (srmath.SR_FACTOR_MIN, srmath.SR_FACTOR_MAX), schema
    assert SRHeadCreate.model_fields["factor"].default == srmath.SR_FACTOR_DEFAULT
    assert Settings.model_fields["max_sr_output_pixels"].default == srmath.MAX_OUTPUT_PIXELS
    assert (
        bounds(SuperResolutionCreate, "n") == (1, vocabulary.SR_VARIANTS_MAX)
        and vocabulary.SR_VARIANTS_MAX <= MAX_VARIANTS
    )
    assert set(vocabulary.SR_MODES) <= set(engine.MODES)


def test_the_engines_words_are_cores() -> None:
    from engine import config, srmath

    assert vocabulary.MODES == config.MODES and vocabulary.PRESETS == config.PRESETS
    assert (
        vocabulary.COMPOSITES == config.COMPOSITES
        and vocabulary.DEFAULT_COMPOSITE == config.DEFAULT_COMPOSITE
    )
    assert vocabulary.TRAIN_STAGES_RANGE == config.TRAIN_STAGES_RANGE
    assert vocabulary.ITERS_PER_STAGE_RANGE == config.ITERS_PER_STAGE_RANGE
    assert vocabulary.IMAGE_SIZE_RANGE == config.IMAGE_SIZE_RANGE
    assert vocabulary.REQUEST_FIELDS == config.REQUEST_FIELDS
    assert (vocabulary.SR_FACTOR_MIN, vocabulary.SR_FACTOR_MAX) == (
        srmath.SR_FACTOR_MIN,
        srmath.SR_FACTOR_MAX,
    )
    assert vocabulary.SR_FACTOR_DEFAULT == srmath.SR_FACTOR_DEFAULT
    assert vocabulary.SR_MAX_OUTPUT_SIDE == srmath.MAX_OUTPUT_SIDE
    assert vocabulary.SR_MAX_OUTPUT_PIXELS == srmath.MAX_OUTPUT_PIXELS
    assert vocabulary.SR_MODES == srmath.SR_MODES


REQUESTS = [
    {},
    {"max_size": 20},
    {"max_size": 32, "min_size": 16, "train_stages": 2, "iters_per_stage": 3},
    {"max_size": 1024, "train_stages": 12, "iters_per_stage": 20000, "lr_scale": 0.5},
    {"min_size": 200},  # above max_size: refused
    {"train_stages": 13},
    {"iters_per_stage": 0},
    {"max_size": 2000},
    {"lr_scale": 0.0},
    {"max_size": 15, "min_size": 15},
]


def engine_config(params: dict[str, Any]) -> dict[str, Any] | str:
    try:
        return training_config(params).to_dict()
    except ValueError as e:
        return str(e)


def core_config(params: dict[str, Any]) -> dict[str, Any] | str:
    from core.training import resolve_training

    try:
        return resolve_training(params)
    except ValueError as e:
        return str(e)


@pytest.mark.parametrize("preset", vocabulary.PRESETS)
@pytest.mark.parametrize("mode", vocabulary.MODES)
def test_core_resolves_every_request_to_the_engines_config(preset: str, mode: str) -> None:
    for request in REQUESTS:
        params = {"preset": preset, "mode": mode, **request}
        assert core_config(params) == engine_config(params), params
    assert core_config({"preset": "fast"}) == engine_config({"preset": "fast"})


SHAPES = [(40, 48), (27, 32), (433, 650), (650, 433), (16, 4000), (4000, 16), (300, 1000), (20, 300), (17, 17),
          (1024, 1024), (8192, 100), (120, 121), (31, 33)]  # fmt: skip


@pytest.mark.parametrize("preset", vocabulary.PRESETS)
@pytest.mark.parametrize("mode", vocabulary.MODES)
def test_core_builds_and_refuses_the_engines_pyramids(preset: str, mode: str) -> None:
    from core import training
    from engine import geometry

    for request in ({}, {"train_stages": 2, "max_size": 32, "min_size": 16}, {"train_stages": 8}):
        params = {"preset": preset, "mode": mode, **request}
        config, cfg = training.resolve_training(params), training_config(params)
        for height, width in SHAPES:
            assert training.stage_sizes(height, width, config) == geometry.stage_sizes(height, width, cfg)
            refusals = []
            for check, rules in ((training.check_image_size, config), (geometry.check_image_size, cfg)):
                try:
                    check(height, width, rules)  # type: ignore[operator]
                    refusals.append(None)
                except ValueError as e:
                    refusals.append(str(e))
            assert refusals[0] == refusals[1], (params, height, width)


def test_core_sizes_and_refuses_the_engines_super_resolutions() -> None:
    from core import sr_limits
    from engine import srmath

    for height, width in [(27, 32), (167, 250), (250, 167), (100, 150), (1024, 700), (7, 3)]:
        for factor in (1.0, 1.01, 1.15, 2.0, 2.3, 3.4, 4.0, 7.99, 8.0, 8.5, float("nan"), float("inf")):
            for cap in (10_000, 1_048_576, 4_194_304):
                core_says = sr_limits.sr_request_problems(height, width, factor, cap)
                assert core_says == srmath.sr_request_problems(height, width, factor, cap)
                if not core_says:
                    assert sr_limits.sr_output_size(height, width, factor) == srmath.sr_output_size(
                        height, width, factor
                    )
            assert sr_limits.sr_max_factor(height, width, 10_000) == srmath.sr_max_factor(
                height, width, 10_000
            )
