"""/v1/vocabulary and /v1/pyramid: what a client may ask for, and what a training would make of an image.

Read-only, computed with the engine's own torch-free rules (`engine.spec`, through `core.training`), so a
client (the page at `/`) shows the sizes and limits the worker trains with.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.contract import problem_responses
from api.deps import CurrentOwner, ServicesDep
from api.render import pyramid_read, vocabulary_read
from api.schemas import PyramidQuery, PyramidRead, VocabularyRead
from core import training
from core.errors import InvalidParameter

router = APIRouter(prefix="/v1", tags=["vocabulary"], responses=problem_responses(401, 503))


@router.get(
    "/vocabulary",
    response_model=VocabularyRead,
    summary="Modes, presets (with the numbers they resolve to), choices and limits",
)
def get_vocabulary(services: ServicesDep, _owner: CurrentOwner) -> VocabularyRead:
    return vocabulary_read(services.settings)


@router.get(
    "/pyramid",
    response_model=PyramidRead,
    summary="What a training would make of an image: the top-stage size the model sees, every stage's size",
    description=(
        "Takes an image's size and the training fields of `POST /v1/models`; nothing is stored. An image "
        "the pyramid cannot be built from (too small for `min_size`, or for the number of stages) is a 422 "
        "with the reason, the same one the training would fail with."
    ),
    responses=problem_responses(
        422,
        notes={
            422: "invalid fields, or an image the pyramid cannot be built from (the reason the training "
            "would fail with)"
        },
    ),
)
def get_pyramid(query: Annotated[PyramidQuery, Query()], _owner: CurrentOwner) -> PyramidRead:
    params = query.model_dump(exclude={"width", "height"}, exclude_none=True)
    try:
        planned = training.pyramid(query.width, query.height, params)
    except ValueError as e:
        raise InvalidParameter(str(e), errors=[{"loc": ["query", "width"], "msg": str(e)}]) from e
    return pyramid_read(query.width, query.height, planned)
