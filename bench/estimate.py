"""Estimate vs actual: what `GET /v1/estimate` predicts for a training, and how long the worker then takes.

    python bench/estimate.py                 # quick preset, 3 sizes, 100 iterations per stage (a few minutes)
    python bench/estimate.py --iters 400     # the quick preset's own iterations
    python bench/estimate.py --device cuda

A fresh service (SQLite + local folder in a temp directory, the real submit use-case, the worker's `run_job`
in this process, as `make run` does) trains a small calibration model first (estimated from the built-in
prior: no pace measured yet), then three trainings of different sizes and stage counts. Before each, the
estimate comes from core.estimates with what the earlier trainings recorded; the actual time is the job's
running time (started_at -> finished_at: the final checkpoint and previews included, the queue not). While
each trains, a thread reads the job's progress every 0.5 s: `eta swing` is the largest over the smallest
predicted total (elapsed + ETA) after the first report, within the first two minutes (1.0: a steady ETA).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.common import print_table
from core import estimates
from core.images import validate_image
from core.keys import get_or_create_owner
from core.migrate import upgrade_to_head
from core.models import Job, JobKind
from core.services import Services
from core.settings import get_settings
from core.submit import JobRequest, NewModel, submit
from tests.browser.images import landscape
from worker.run import run_job
from worker.runtime import build_context

# (label, fields of POST /v1/models); the image is 192 x 128
CALIBRATION = ("calibration", {"preset": "quick", "max_size": 32, "train_stages": 2, "min_size": 16})
TRAININGS = [
    ("small", {"preset": "quick", "max_size": 48, "train_stages": 3}),
    ("quick", {"preset": "quick", "max_size": 64, "train_stages": 4}),
    ("larger", {"preset": "quick", "max_size": 96, "train_stages": 5}),
]
WIDTH, HEIGHT = 192, 128
SWING_WINDOW_S = 120.0


def watch_eta(ctx: object, job_id: str, stop: threading.Event, totals: list[tuple[float, float]]) -> None:
    """(elapsed, elapsed + eta) from the job's progress, every 0.5 s."""
    db = ctx.db  # type: ignore[attr-defined]
    while not stop.wait(0.5):
        with db.read() as session:
            progress = session.get_one(Job, job_id).progress or {}
        if progress.get("eta_s") is not None:
            totals.append(
                (float(progress["elapsed_s"]), float(progress["elapsed_s"]) + float(progress["eta_s"]))
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100, help="iterations per stage of every training")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="consingan-bench-estimate-"))
    settings = get_settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        storage_dir=folder / "objects",
        queue_mode="embedded",
        device=args.device,
        progress_interval_s=0.5,
        log_level="WARNING",
    )
    upgrade_to_head(settings.database_url)
    ctx = build_context(settings)
    services = Services(settings, ctx.db, ctx.storage, ctx.queue)
    with ctx.db.transaction() as session:
        owner_id = get_or_create_owner(session, "bench").id
    image = validate_image(landscape(WIDTH, HEIGHT), max_pixels=40_000_000, max_side=8192, min_side=16)
    print(
        f"device {ctx.device_kind}, torch threads {torch.get_num_threads()}, load {os.getloadavg()}",
        flush=True,
    )

    rows = []
    for label, fields in [CALIBRATION, *TRAININGS]:
        params = {**fields, "iters_per_stage": args.iters, "seed": 1}
        with ctx.db.read() as session:
            plan = estimates.estimate(session, ctx.device_kind, WIDTH, HEIGHT, params)
        request = JobRequest(JobKind.TRAIN, owner_id, "/bench", params, new_model=NewModel(image))
        job_id = submit(services, request, lambda session, job: ({}, "")).job_id
        assert job_id is not None
        stop, totals = threading.Event(), []  # type: ignore[var-annotated]
        watcher = threading.Thread(target=watch_eta, args=(ctx, job_id, stop, totals), daemon=True)
        watcher.start()
        run_job(ctx, job_id)
        stop.set()
        watcher.join()
        with ctx.db.read() as session:
            job = session.get_one(Job, job_id)
            assert job.state == "succeeded", job.error
            assert job.started_at is not None and job.finished_at is not None
            actual = (job.finished_at - job.started_at).total_seconds()
        early = [total for elapsed, total in totals if elapsed <= SWING_WINDOW_S]
        swing = f"{max(early) / min(early):.2f}" if early else "-"
        stages = len([p for p in plan.phases if p.kind == estimates.STAGE])
        top = plan.phases[stages - 1]
        rows.append(
            [
                label,
                f"{top.width}x{top.height}",
                stages,
                args.iters,
                f"{plan.basis} ({plan.measurements})",
                f"{plan.total_s:.0f}",
                f"{actual:.0f}",
                f"{plan.total_s / actual:.2f}",
                swing,
            ]
        )
        print(
            f"{label}: estimate {plan.total_s:.0f} s, actual {actual:.0f} s, load {os.getloadavg()}",
            flush=True,
        )
    print()
    header = ["training", "top", "stages", "iters", "basis (measured stages)", "estimate s", "actual s"]
    print_table([*header, "estimate/actual", "eta swing"], rows)
    print(f"\nload average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
