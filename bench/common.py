"""Helpers shared by the benchmark scripts: per-stage timing, device sync, tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

import engine
from engine import metrics


@dataclass
class StageTimer:
    """Per-stage wall time from the engine's progress reports: a stage ends at its last iteration."""

    stage_end_s: dict[int, float] = field(default_factory=dict)
    label: str = ""  # when set, each stage's end is printed with it (a log to follow a long run by)

    def __call__(self, progress: engine.Progress) -> None:
        if progress.iteration == progress.iters_per_stage:
            self.stage_end_s[progress.stage] = progress.elapsed_s
            if self.label:
                print(f"{self.label}: stage {progress.stage} done at {progress.elapsed_s:.1f} s", flush=True)

    def per_stage_s(self) -> list[float]:
        ends = [self.stage_end_s[s] for s in sorted(self.stage_end_s)]
        return [end - start for start, end in zip([0.0, *ends], ends, strict=False)]


def synchronize(device: str) -> None:
    # CUDA kernels run asynchronously; wall times mean something only after the queue is drained.
    if device == "cuda":
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


def sifid_or_reason(real: torch.Tensor, samples: torch.Tensor, device: str) -> dict[str, float] | str:
    """SIFID mean/median of `samples` ([N, 3, h, w]) against `real` ([1, 3, H, W]), or why it cannot be
    computed here (no Inception weights, no scipy): a benchmark table says so instead of crashing."""
    missing = metrics.missing_requirements()
    if missing is not None:
        return f"n/a: {missing}"
    return metrics.summarize(metrics.sifid(real, samples, device=device))


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
