"""The API's published bounds and choices are ones the engine accepts: the schemas' numbers and enums (what a
client reads in /openapi.json) against the engine. (The words and rules themselves are the engine's, imported
from engine.spec by core, so there is no copy left to hold to them.)"""

from __future__ import annotations

from typing import Any

import pytest

import engine
from api.schemas import AnimationCreate, HarmonizationCreate, ModelCreate, SampleRequest
from core import vocabulary
from engine.image import ANIMATION_FORMATS
from engine.sampling import MAX_SCALE
from engine.spec import request_config


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
            request_config({"preset": preset, field: value, **smallest})  # accepted
        for value in (low - 1, high + 1):
            with pytest.raises(ValueError, match=field):
                request_config({"preset": preset, field: value, **smallest})


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
    outputs = vocabulary.JOB_FILE_NAMES - {vocabulary.NAIVE_FILE, vocabulary.MASK_FILE}
    assert outputs == set(vocabulary.MEDIA_TYPES)


def test_super_resolution_bounds_are_the_engines() -> None:
    from api.schemas import SRHeadCreate, SuperResolutionCreate
    from core.settings import Settings
    from engine.spec import srmath
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
