"""/v1/estimate: how long a training would take on this service's workers, before it is submitted.

Computed from the paces the workers recorded (core/estimates.py), for the device kind that trained last;
nothing is stored. The page shows it on the upload form and updates it as the settings change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.contract import problem_responses
from api.deps import CurrentOwner, ServicesDep, SessionDep
from api.schemas import EstimateQuery, EstimateRead, HeadEstimate, StageEstimate
from core import estimates
from core.errors import InvalidParameter

router = APIRouter(prefix="/v1", tags=["vocabulary"], responses=problem_responses(401, 503))


@router.get(
    "/estimate",
    response_model=EstimateRead,
    summary="How long a training would take here: seconds per stage and in all, the head included",
    description=(
        "Takes the fields of `GET /v1/pyramid` (an image's size and the training fields of `POST /v1/models`) "
        "and `sr_factor`/`sr_iters`. The seconds come from a line `a + b * work` per device kind, fitted to the "
        "paces this service's workers measured at every stage they trained (`basis: measured`), or a "
        "built-in guess before any (`basis: prior`). An image the pyramid cannot be built from is a 422."
    ),
    responses=problem_responses(
        422, notes={422: "invalid fields, or an image the pyramid cannot be built from"}
    ),
)
def get_estimate(
    query: Annotated[EstimateQuery, Query()], session: SessionDep, services: ServicesDep, _owner: CurrentOwner
) -> EstimateRead:
    params = query.model_dump(exclude={"width", "height"}, exclude_none=True)
    default_device = "cuda" if services.settings.device == "cuda" else "cpu"
    try:
        plan = estimates.estimate(session, default_device, query.width, query.height, params)
    except ValueError as e:
        raise InvalidParameter(str(e), errors=[{"loc": ["query", "width"], "msg": str(e)}]) from e
    stages = [
        StageEstimate(
            stage=p.index,
            width=p.width,
            height=p.height,
            iterations=p.iterations,
            seconds=round(p.seconds, 1),
        )
        for p in plan.phases
        if p.kind == estimates.STAGE
    ]
    head = next(
        (
            HeadEstimate(iterations=p.iterations, seconds=round(p.seconds, 1))
            for p in plan.phases
            if p.kind == estimates.SR_HEAD
        ),
        None,
    )
    return EstimateRead(
        device=plan.device,
        basis="measured" if plan.basis == "measured" else "prior",
        measurements=plan.measurements,
        stages=stages,
        sr_head=head,
        total_s=round(plan.total_s, 1),
    )
