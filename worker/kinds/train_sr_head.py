"""The `train_sr_head` job: a super-resolution head for a model trained earlier (superres-spec §3.3), stored
beside the model; `super_resolve` jobs then run SinGAN's loop with it."""

from __future__ import annotations

import engine
from core import estimates
from core.models import Job, JobState, Model
from core.storage import sr_head_key
from worker import outcomes
from worker.artifacts import load_trained, sr_head_config, store_sr_head
from worker.runtime import CancelCheck, WorkerContext, measured_speeds, progress_reporter


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
    facts = store_sr_head(ctx, model, head)

    def point_at_head(row: Model) -> None:
        row.sr_head = facts

    return outcomes.commit_result(
        ctx, job, owned_keys=[], shared_keys=[sr_head_key(model.id)], update_model=point_at_head
    )
