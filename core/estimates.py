"""How long a training will take on this service's workers, from the pace they measured themselves.

Workers record, after every phase they train (a pyramid stage, the super-resolution head), the seconds per
iteration it took, with the pixels one iteration runs through and the networks' width (`IterationSpeed`
rows, `record_speed`). An estimate fits, per device kind and phase, one line

    seconds per iteration = a + b * work,   work = pixels * (channels / 64)^2

over the device's most recent measurements, starting from a prior (`PRIORS`: the line measured on a busy
development CPU, a guess for CUDA). With no data the prior is the estimate; one measurement sets the level
(the prior scaled to it); measurements that span sizes set the slope by least squares, the scaled prior
weighing as PRIOR_WEIGHT of them, so a few similar sizes cannot tilt the line into a negative or absurd one.

`pixels` at a stage is the stage's own plus every coarser stage's: ConSinGAN's generator runs the whole
chain at every iteration (and trains the newest `train_depth` bodies), so a stage of a deep pyramid costs
more than the same size alone. A phase's seconds count everything between its end and the previous
phase's end (the stage's snapshot and preview included), so the total is what a person waits.

`TrainingPlan` is the per-phase prediction a running job blends with its observed pace (`eta`): the model
alone at the start, the observed pace more and more as predicted work gets done, so the ETA does not swing
with the first seconds' noise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import kind_rules, training
from core.models import IterationSpeed
from engine.spec import SRConfig, head_preset

STAGE, SR_HEAD = "stage", "sr_head"
BASE_CHANNELS = 64
RECENT = 60  # measurements per device and phase in a fit: the newest (a machine's load changes)
PRIOR_WEIGHT = 3.0  # the (scaled) prior's shape counts as this many measurements
ETA_CONFIDENCE_S = 30.0  # predicted seconds of work after which the observed pace weighs as much as the model


@dataclass(frozen=True)
class Line:
    """Seconds per iteration = a + b * work."""

    a: float
    b: float

    def at(self, work: float) -> float:
        return self.a + self.b * work


# Device family ("cpu", "cuda", ...) -> phase -> prior line. CPU: measured on the development machine (2
# busy cores, OMP_NUM_THREADS=1, quick preset); CUDA: a guess (the fast path on a recent GPU) the first real
# measurements replace.
PRIORS: dict[str, dict[str, Line]] = {
    "cpu": {STAGE: Line(0.25, 3.0e-4), SR_HEAD: Line(0.05, 1.3e-4)},
    "cuda": {STAGE: Line(0.03, 1.0e-6), SR_HEAD: Line(0.01, 1.0e-7)},
}


def work_units(pixels: int, channels: int) -> float:
    return pixels * (channels / BASE_CHANNELS) ** 2


def prior_for(device: str, phase: str) -> Line:
    family = device.split(":", 1)[0]
    return PRIORS.get(family, PRIORS["cpu"])[phase]


def fit(points: Sequence[tuple[float, float]], prior: Line) -> Line:
    """(work, seconds per iteration) points -> a line. No points: the prior. Otherwise the prior scaled to
    the points' level (the median of measured / prior: the level is always the measurements'), blended
    with the least-squares line of the points once they span sizes (3 or more, the largest work at least
    1.5x the smallest), each point weighing 1 against the scaled prior's PRIOR_WEIGHT. Never a negative
    intercept or slope."""
    if not points:
        return prior
    ratios = sorted(y / prior.at(x) for x, y in points if prior.at(x) > 0)
    scale = ratios[len(ratios) // 2] if ratios else 1.0
    scaled = Line(prior.a * scale, prior.b * scale)
    xs = [x for x, _ in points]
    if len(points) < 3 or max(xs) < 1.5 * min(xs):
        return scaled
    measured = least_squares(points)
    share = len(points) / (len(points) + PRIOR_WEIGHT)
    return Line(share * measured.a + (1 - share) * scaled.a, share * measured.b + (1 - share) * scaled.b)


def least_squares(points: Sequence[tuple[float, float]]) -> Line:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    b = sxy / sxx if sxx > 0 else 0.0
    a = mean_y - b * mean_x
    if b < 0:  # cost never falls with size: a flat line at the mean
        return Line(max(mean_y, 0.0), 0.0)
    if a < 0:  # no negative fixed cost: proportional to work
        return Line(0.0, sum(x * y for x, y in points) / sum(x * x for x, _ in points))
    return Line(a, b)


@dataclass(frozen=True)
class Speeds:
    """The lines an estimate uses: the device they hold for, and how many measurements each rests on."""

    device: str
    lines: Mapping[str, Line]
    measured: Mapping[str, int] = field(default_factory=dict)

    @property
    def basis(self) -> str:
        return "measured" if self.measured.get(STAGE, 0) else "prior"


def current_device(session: Session, default: str) -> str:
    """The device kind that measured most recently: the one the next training most likely runs on."""
    newest = session.scalar(select(IterationSpeed.device).order_by(IterationSpeed.id.desc()).limit(1))
    return newest or default


def load_speeds(session: Session, device: str) -> Speeds:
    lines: dict[str, Line] = {}
    measured: dict[str, int] = {}
    for phase in (STAGE, SR_HEAD):
        rows = session.scalars(
            select(IterationSpeed)
            .where(IterationSpeed.device == device, IterationSpeed.phase == phase)
            .order_by(IterationSpeed.id.desc())
            .limit(RECENT)
        ).all()
        points = [(work_units(r.pixels, r.channels), r.seconds_per_iteration) for r in rows]
        lines[phase] = fit(points, prior_for(device, phase))
        measured[phase] = len(points)
    return Speeds(device, lines, measured)


def record_speed(
    session: Session,
    *,
    device: str,
    phase: str,
    stage: int,
    pixels: int,
    channels: int,
    iterations: int,
    seconds: float,
) -> None:
    if iterations <= 0 or not math.isfinite(seconds) or seconds <= 0:
        return
    session.add(
        IterationSpeed(
            device=device,
            phase=phase,
            stage=stage,
            pixels=pixels,
            channels=channels,
            iterations=iterations,
            seconds_per_iteration=seconds / iterations,
        )
    )


def prune_speeds(session: Session, keep: int = RECENT) -> int:
    """Delete all but the newest `keep` measurements of each device and phase (fits read no more than
    RECENT; the table would otherwise grow by a row per stage trained, forever). Returns the rows deleted."""
    groups = session.execute(select(IterationSpeed.device, IterationSpeed.phase).distinct()).all()
    deleted = 0
    for device, phase in groups:
        same = (IterationSpeed.device == device, IterationSpeed.phase == phase)
        oldest_kept = session.scalar(
            select(IterationSpeed.id)
            .where(*same)
            .order_by(IterationSpeed.id.desc())
            .offset(keep - 1)
            .limit(1)
        )
        if oldest_kept is None:
            continue
        result = session.execute(
            delete(IterationSpeed).where(*same, IterationSpeed.id < oldest_kept),
            execution_options={"synchronize_session": False},
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


# --- a training's plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One phase of a training: a pyramid stage or the head."""

    kind: str  # STAGE or SR_HEAD
    index: int  # the stage's index (the head: the number of stages)
    height: int
    width: int
    pixels: int  # what one iteration runs through (see the module's docstring)
    channels: int
    iterations: int
    seconds: float  # predicted


@dataclass(frozen=True)
class TrainingPlan:
    device: str
    basis: str  # "prior" (no measurement yet on this device) or "measured"
    measurements: int
    phases: tuple[Phase, ...]

    @property
    def total_s(self) -> float:
        return sum(p.seconds for p in self.phases)

    def done_s(self, phase: int, iteration: int) -> float:
        """Predicted seconds of the work up to `iteration` of phase number `phase`."""
        done = sum(p.seconds for p in self.phases[:phase])
        if phase < len(self.phases):
            current = self.phases[phase]
            done += current.seconds * min(iteration, current.iterations) / max(current.iterations, 1)
        return done


def sr_head_shape(config: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[int, int] | None:
    """(iterations, channels) of the head a train request asks for, or None without `sr_factor`."""
    if params.get("sr_factor") is None:
        return None
    # the engine's head, as the worker trains it
    head = SRConfig.preset(head_preset(str(params.get("preset", "paper"))))
    return int(params.get("sr_iters") or head.iterations), head.channels


def plan_training(
    config: Mapping[str, Any],
    stage_sizes: Sequence[tuple[int, int]],
    speeds: Speeds,
    head: tuple[int, int] | None = None,
) -> TrainingPlan:
    """Every phase of a training with `config` (core.training's resolved config) over `stage_sizes` ((H, W)
    coarsest first), and the head (iterations, channels) when there is one, with predicted seconds."""
    channels = int(config["channels"])
    iterations = int(config["iters_per_stage"])
    phases: list[Phase] = []
    chain = 0
    for index, (height, width) in enumerate(stage_sizes):
        chain += height * width
        seconds = iterations * speeds.lines[STAGE].at(work_units(chain, channels))
        phases.append(Phase(STAGE, index, height, width, chain, channels, iterations, seconds))
    if head is not None:
        head_iterations, head_channels = head
        height, width = stage_sizes[-1]
        per_iteration = speeds.lines[SR_HEAD].at(work_units(height * width, head_channels))
        phases.append(
            Phase(
                SR_HEAD,
                len(stage_sizes),
                height,
                width,
                height * width,
                head_channels,
                head_iterations,
                head_iterations * per_iteration,
            )
        )
    return TrainingPlan(speeds.device, speeds.basis, speeds.measured.get(STAGE, 0), tuple(phases))


class Eta:
    """A running training's seconds left: the plan's remaining seconds times a pace ratio that starts at 1
    (the model) and moves to the observed ratio (elapsed / predicted for the work done) as predicted work
    accumulates: weight done / (done + ETA_CONFIDENCE_S). Observed from the first report this attempt sees,
    so a resumed training is measured on its own work."""

    def __init__(self, plan: TrainingPlan, clock: Any = time.monotonic) -> None:
        self.plan, self.clock = plan, clock
        self.origin: tuple[float, float] | None = None  # (clock, predicted done) at the first report

    def __call__(self, phase: int, iteration: int) -> float:
        predicted_done = self.plan.done_s(phase, iteration)
        now = self.clock()
        if self.origin is None:
            self.origin = (now, predicted_done)
        started, done_at_start = self.origin
        predicted = predicted_done - done_at_start
        observed = now - started
        ratio = 1.0
        if predicted > 0:
            weight = predicted / (predicted + max(ETA_CONFIDENCE_S, 0.1 * self.plan.total_s))
            ratio = (1 - weight) + weight * (observed / predicted)
        return max(self.plan.total_s - predicted_done, 0.0) * ratio


def plan_head(top: tuple[int, int], speeds: Speeds, iterations: int, channels: int) -> TrainingPlan:
    """The plan of a `train_sr_head` job: the head alone, on the model's top image (H, W)."""
    height, width = top
    seconds = iterations * speeds.lines[SR_HEAD].at(work_units(height * width, channels))
    phase = Phase(SR_HEAD, 0, height, width, height * width, channels, iterations, seconds)
    return TrainingPlan(speeds.device, speeds.basis, speeds.measured.get(SR_HEAD, 0), (phase,))


def estimate(
    session: Session, default_device: str, width: int, height: int, params: Mapping[str, Any]
) -> TrainingPlan:
    """`GET /v1/estimate`: the plan of a training with `params` (the fields of `POST /v1/models`) on a
    width x height image, on the device kind that trained last (`default_device` before any did). Raises
    ValueError (the engine's words) as `core.training.pyramid` does."""
    pyramid = training.pyramid(width, height, params)
    # the same refusals as the training's own (InvalidParameter, a 422)
    kind_rules.check_head_request(str(pyramid.config.get("mode", "generation")), params, where="query")
    speeds = load_speeds(session, current_device(session, default_device))
    return plan_training(pyramid.config, pyramid.stage_sizes, speeds, sr_head_shape(pyramid.config, params))
