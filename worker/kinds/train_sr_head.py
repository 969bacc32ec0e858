"""The `train_sr_head` job: a super-resolution head for a model trained earlier (superres-spec §3.3), stored
beside the model; `super_resolve` jobs then run SinGAN's loop with it."""

from __future__ import annotations

import logging

import engine
from core import estimates
from core.models import Job, JobState, Model
from worker import outcomes
from worker.artifacts import load_trained, sr_head_config, store_sr_head
from worker.runtime import CancelCheck, WorkerContext, measured_speeds, progress_reporter

log = logging.getLogger(__name__)


def head_plan(
    ctx: WorkerContext, trained: engine.TrainedModel, cfg: engine.SRConfig
) -> estimates.TrainingPlan | None:
    speeds = measured_speeds(ctx)
    if speeds is None:
        return None
    return estimates.plan_head(trained.stage_shapes[-1], speeds, cfg.iterations, cfg.channels)


def run(ctx: WorkerContext, job: Job, model: Model) -> JobState:
    params = job.params
    try:
        trained = load_trained(ctx, model)
        cfg = sr_head_config(model, params.get("factor"), params.get("iterations"))
        head = engine.train_sr_head(
            trained,
            cfg,
            rng=engine.make_rng(int(params.get("seed", 0)), trained.device),
            on_progress=progress_reporter(ctx, job, head_plan(ctx, trained, cfg)),
            should_stop=CancelCheck(ctx, job),
        )
    except engine.TrainingCanceled:
        return outcomes.finish_canceled(ctx, job)
    except ValueError as e:
        return outcomes.fail(ctx, job, str(e))
    facts = store_sr_head(ctx, model, job, head)
    replaced: list[str] = []

    def point_at_head(row: Model) -> None:
        if row.sr_head and row.sr_head.get("key") != facts["key"]:
            replaced.append(str(row.sr_head["key"]))
        row.sr_head = facts

    state = outcomes.commit_result(ctx, job, owned_keys=[str(facts["key"])], update_model=point_at_head)
    if state == JobState.SUCCEEDED:
        for key in replaced:  # the row names the new head now; a leftover would be swept with the model
            try:
                ctx.storage.delete(key)
            except Exception:
                log.warning(
                    "replaced head not deleted", extra={"model_id": model.id, "key": key}, exc_info=True
                )
    return state
