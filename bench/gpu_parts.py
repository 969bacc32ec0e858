"""The parts of bench/gpu_check.py: each runs in its own process and returns a JSON-able dict.

Settings come in two sizes: the GPU run (paper settings, sized to fit 9 minutes on an H100) and the dry
run (the same code on a CPU with tiny settings, to find mistakes before GPU time is spent).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sample_speed
import throughput
import torch
import train_speed

import engine
from engine.image import to_pil

ROOT = Path(__file__).resolve().parent.parent
GRID_SAMPLES = 16


@dataclass(frozen=True)
class Settings:
    device: str
    compare: engine.TrainConfig  # both paths at reduced iterations
    paper: engine.TrainConfig  # the fast path at the full defaults
    samples: int  # scored by SIFID per model
    batches: tuple[int, ...]  # sampling throughput
    sampling_seconds: float  # per row
    sampling_fallback_iters: int  # train this little for sampling when the paper part left no model
    concurrency: tuple[int, ...]
    concurrency_preset: str
    concurrency_iters: int | None
    # seconds per part; what a part leaves unused goes to the parts after it
    budgets: dict[str, float] = field(default_factory=dict)
    # each training stops this long before its part's end, leaving time for sampling, SIFID and grids
    training_margin_s: float = 20.0


GPU = Settings(
    device="cuda",
    compare=engine.TrainConfig.preset("paper", iters_per_stage=400),
    paper=engine.TrainConfig.preset("paper"),
    samples=50,
    batches=(1, 16, 64),
    sampling_seconds=2.0,
    sampling_fallback_iters=50,
    concurrency=(1, 2, 4),
    concurrency_preset="paper",
    concurrency_iters=200,
    budgets={
        "pytest": 60,
        "reference": 150,  # the original takes ~99 s for 400 iterations per stage on an H100
        "fast": 45,
        "paper": 85,  # goal 30 s
        "sampling": 45,
        "concurrency": 100,
    },
)

_TINY = {"max_size": 40, "min_size": 16, "train_stages": 3}
DRY = Settings(
    device="cpu",
    compare=engine.TrainConfig.preset("paper", iters_per_stage=8, **_TINY),
    paper=engine.TrainConfig.preset("paper", iters_per_stage=10, **_TINY),
    samples=4,
    batches=(1, 4, 8),
    sampling_seconds=0.3,
    sampling_fallback_iters=4,
    concurrency=(1, 2),
    concurrency_preset="quick",
    concurrency_iters=3,
    budgets={"pytest": 90, "reference": 90, "fast": 90, "paper": 90, "sampling": 60, "concurrency": 120},
    training_margin_s=10.0,
)
PARTS = tuple(GPU.budgets)


def environment(device: str) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.machine()})",
    }


def run_pytest(settings: Settings, budget_s: float) -> dict[str, Any]:
    """`pytest -m gpu` over the engine tests (they skip where there is no CUDA)."""
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/engine", "-q", "-p", "no:cacheprovider"]
    try:
        done = subprocess.run(
            [*command, "-rfEs"], cwd=ROOT, capture_output=True, text=True, timeout=budget_s - 5, check=False
        )
    except subprocess.TimeoutExpired as expired:
        return {"returncode": None, "summary": f"timed out after {expired.timeout:.0f} s", "failed": []}
    print(done.stdout[-6000:], done.stderr[-2000:], sep="\n")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {
        "returncode": done.returncode,
        "summary": lines[-1] if lines else "",
        "failed": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
    }


def run_training(
    name: str, settings: Settings, out: Path, work: Path, budget_s: float, image: torch.Tensor
) -> dict[str, Any]:
    """reference / fast (reduced iterations) or paper (the fast path at the defaults): times, SIFID, grid."""
    path = "reference" if name == "reference" else "fast"
    cfg = settings.paper if name == "paper" else settings.compare
    result = train_speed.train_once(
        image,
        cfg,
        device=settings.device,
        path=path,
        seed=0,
        n=settings.samples,
        stop_after_s=max(budget_s - settings.training_margin_s, 1.0),
    )
    model, samples = result.pop("_model"), result.pop("_samples")
    if samples is not None:
        grid_file = out / f"samples_{name}.png"
        to_pil(engine.grid(samples[:GRID_SAMPLES])).save(grid_file)
        result["grid"] = grid_file.name
    if name == "paper" and model is not None:
        (work / "paper.safetensors").write_bytes(engine.checkpoint.to_bytes(model))
    return result


def run_sampling(settings: Settings, work: Path, image: torch.Tensor) -> dict[str, Any]:
    """Samples/s per batch size, on the paper part's model (or a briefly trained one of the same size)."""
    saved = work / "paper.safetensors"
    if saved.is_file():
        model = engine.checkpoint.from_bytes(saved.read_bytes(), settings.device)
        source = "the paper part's model"
    else:
        cfg = settings.paper.replace(iters_per_stage=settings.sampling_fallback_iters)
        model = engine.train(image, cfg, device=settings.device, rng=engine.make_rng(0, settings.device))
        source = f"trained for {cfg.iters_per_stage} iterations per stage (no paper model)"
    rows = sample_speed.measure(model, settings.batches, settings.device, settings.sampling_seconds)
    return {"model": source, "size": list(model.stage_shapes[-1]), "rows": rows}


def run_concurrency(settings: Settings, work: Path, image_file: Path, budget_s: float) -> dict[str, Any]:
    """Models/hour with N trainings sharing the device; rows are saved as they come (a kill keeps them)."""
    partial = work / "concurrency.partial.json"

    described = {"preset": settings.concurrency_preset, "iters_per_stage": settings.concurrency_iters}

    def keep(rows: list[dict[str, Any]]) -> None:
        partial.write_text(json.dumps(described | {"rows": rows, "partial": True}))

    started = time.perf_counter()
    rows = throughput.measure(
        image_file,
        settings.concurrency,
        preset=settings.concurrency_preset,
        iters=settings.concurrency_iters,
        device=settings.device,
        stop_after_s=budget_s - 5.0,
        on_row=keep,
    )
    return described | {"rows": rows, "seconds": time.perf_counter() - started}


def run(name: str, settings: Settings, out: Path, work: Path, budget_s: float, image_file: Path) -> Any:
    if name == "pytest":
        return run_pytest(settings, budget_s)
    if name == "concurrency":
        return run_concurrency(settings, work, image_file, budget_s)
    image = engine.load_image(image_file.read_bytes())
    if name == "sampling":
        return run_sampling(settings, work, image)
    return run_training(name, settings, out, work, budget_s, image)
