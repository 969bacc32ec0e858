"""One runner per job kind, found through `RUNNERS`: `run(ctx, job, model) -> JobState`.

A runner does the work, stores its objects, and ends through `worker.outcomes` (commit_result, fail,
finish_canceled). Adding a kind is one module here and one line below.
"""

from __future__ import annotations

from typing import Protocol

from core.models import Job, JobKind, JobState, Model
from worker.kinds import animate, harmonize, paint, sample, super_resolve, train, train_sr_head
from worker.runtime import WorkerContext


class Runner(Protocol):
    def __call__(self, ctx: WorkerContext, job: Job, model: Model) -> JobState: ...


RUNNERS: dict[JobKind, Runner] = {
    JobKind.TRAIN: train.run,
    JobKind.SAMPLE: sample.run,
    JobKind.HARMONIZE: harmonize.run,
    JobKind.ANIMATE: animate.run,
    JobKind.TRAIN_SR_HEAD: train_sr_head.run,
    JobKind.SUPER_RESOLVE: super_resolve.run,
    JobKind.PAINT: paint.run,
}
