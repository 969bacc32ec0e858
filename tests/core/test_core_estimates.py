"""core/estimates.py: the fit of measured paces (with its prior), the plan of a training, and the running ETA
that blends the plan with the observed pace."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import delete, select

from core import estimates, training
from core.estimates import SR_HEAD, STAGE, Eta, Line, Speeds, fit, plan_training, work_units
from core.models import IterationSpeed


def speeds(stage: Line, head: Line | None = None, measured: int = 0) -> Speeds:
    return Speeds("cpu", {STAGE: stage, SR_HEAD: head or Line(0.05, 1e-4)}, {STAGE: measured})


def test_the_fit_follows_measurements_and_falls_back_on_the_prior() -> None:
    prior = Line(0.25, 3e-4)
    assert fit([], prior) == pytest.approx(prior)  # no data: the prior itself
    truth = Line(0.05, 2e-5)  # a machine 5-15x faster than the prior
    points = [(x, truth.at(x)) for x in (300.0, 800.0, 1500.0, 3000.0, 6000.0, 12_000.0)] * 3
    fitted = fit(points, prior)
    for x in (500.0, 5000.0, 20_000.0):
        assert fitted.at(x) == pytest.approx(truth.at(x), rel=0.25), x
    one_size = fit([(1000.0, 0.6)] * 4, prior)  # one size only: the prior keeps the slope sane
    assert one_size.a >= 0 and one_size.b >= 0 and one_size.at(1000.0) == pytest.approx(0.6, rel=0.3)
    falling = fit([(100.0, 5.0), (50_000.0, 0.01)] * 5, prior)
    assert falling.b >= 0 and falling.a >= 0


def test_a_plan_has_one_phase_per_stage_and_the_head_with_growing_cost() -> None:
    params = {"preset": "quick", "max_size": 64, "train_stages": 4, "sr_factor": 4}
    pyramid = training.pyramid(250, 185, params)
    plan = plan_training(
        pyramid.config,
        pyramid.stage_sizes,
        speeds(Line(0.1, 1e-4)),
        estimates.sr_head_shape(pyramid.config, params),
    )
    stages = [p for p in plan.phases if p.kind == STAGE]
    assert [(p.height, p.width) for p in stages] == pyramid.stage_sizes
    assert all(p.iterations == 400 and p.channels == 32 for p in stages)
    assert [p.seconds for p in stages] == sorted(p.seconds for p in stages)  # deeper and larger: dearer
    chain = sum(h * w for h, w in pyramid.stage_sizes)
    assert stages[-1].pixels == chain
    assert stages[-1].seconds == pytest.approx(400 * (0.1 + 1e-4 * work_units(chain, 32)))
    head = plan.phases[-1]
    assert head.kind == SR_HEAD and head.iterations == 600 and head.index == 4
    assert plan.total_s == pytest.approx(sum(p.seconds for p in plan.phases))
    without = plan_training(pyramid.config, pyramid.stage_sizes, speeds(Line(0.1, 1e-4)))
    assert all(p.kind == STAGE for p in without.phases)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_running_eta_does_not_swing_with_the_first_minutes_noise() -> None:
    """A training whose real pace is 1.4x the model's, with a slow start (iterations 11-20 take 10 s
    longer: warm-up, a busy neighbour). The plan-based ETA stays within 1.6x of the truth throughout and
    never moves by 3x; the engine's old extrapolation (elapsed / fraction) swings far more."""
    pyramid = training.pyramid(250, 185, {"preset": "quick", "max_size": 64})
    plan = plan_training(pyramid.config, pyramid.stage_sizes, speeds(Line(0.1, 1e-4)))
    clock = Clock()
    eta = Eta(plan, clock)
    reports: list[tuple[float, float, float]] = []  # (blended eta, true remaining, naive eta)
    per_phase_true = [p.seconds * 1.4 for p in plan.phases]
    total_true = sum(per_phase_true) + 10.0
    elapsed = 0.0
    for index, phase in enumerate(plan.phases):
        step = per_phase_true[index] / phase.iterations
        for iteration in range(10, phase.iterations + 1, 10):
            elapsed += 10 * step + (10.0 if index == 0 and iteration == 20 else 0.0)
            clock.now = elapsed
            done = plan.done_s(index, iteration) / plan.total_s
            reports.append((eta(index, iteration), total_true - elapsed, elapsed * (1 - done) / done))
    blended = [r[0] for r in reports[:-1]]
    truth = [max(r[1], 1e-9) for r in reports[:-1]]
    assert all(1 / 1.6 < b / t < 1.6 for b, t in zip(blended[:-5], truth[:-5], strict=True))
    first_minutes = [r for r in reports if total_true - r[1] < 120.0]
    high, low = max(r[0] for r in first_minutes), min(r[0] for r in first_minutes)
    assert high / low < 3.0
    naive_high, naive_low = max(r[2] for r in first_minutes), min(r[2] for r in first_minutes)
    assert naive_high / naive_low > high / low  # the old way swings more


def test_pruning_keeps_the_newest_measurements_of_each_device_and_phase(db: Any) -> None:
    # At the default (the RECENT rows a fit reads) pruning changes no estimate, so other tests' rows may go too.
    device = f"test-device-{time.time_ns()}"
    with db.transaction() as session:
        for i in range(estimates.RECENT + 2):
            for phase in (STAGE, SR_HEAD):
                estimates.record_speed(
                    session, device=device, phase=phase, stage=0, pixels=100 + i, channels=32,
                    iterations=10, seconds=1.0 + i,
                )  # fmt: skip
    with db.read() as session:
        before = estimates.load_speeds(session, device)
    with db.transaction() as session:
        assert estimates.prune_speeds(session) >= 2 * 2
    with db.read() as session:
        for phase in (STAGE, SR_HEAD):
            kept = session.scalars(
                select(IterationSpeed.pixels).where(
                    IterationSpeed.device == device, IterationSpeed.phase == phase
                )
            ).all()
            assert sorted(kept) == list(range(102, 102 + estimates.RECENT)), phase  # the newest RECENT
        assert estimates.load_speeds(session, device) == before
    with db.transaction() as session:
        session.execute(delete(IterationSpeed).where(IterationSpeed.device == device))
