"""Break the fast path on purpose and show which CPU test goes red (issue #12).

    .venv/bin/python bench/fast_mutations.py            # all mutations, about 25 s each on 2 cores
    .venv/bin/python bench/fast_mutations.py --only a b  # some of them

Each mutation is a text replacement in a copy of `engine/` (and the engine tests) in a temporary folder;
the working tree is never touched. The copy's `tests/engine/test_fast.py` and `test_graphs.py` run against
it, and the table lists the tests that failed. A mutation whose text is not found exactly once stops the
run: the code moved, update the mutation. The unmutated copy runs first and must pass.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common import print_table

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/engine/test_fast.py", "tests/engine/test_graphs.py"]
COPIED = ["engine", "tests/__init__.py", "tests/conftest.py", "tests/service_fixtures.py", "tests/engine"]


@dataclass(frozen=True)
class Mutation:
    key: str
    breakage: str
    edits: tuple[tuple[str, str, str], ...]  # (file, text, replacement), each text found exactly once


MUTATIONS = (
    Mutation(
        "a",
        "replay without copying the fresh noise into the static buffers",
        (("engine/fast.py", "            static.copy_(fresh)\n", "            pass\n"),),
    ),
    Mutation(
        "a2",
        "replay without refreshing the penalty's blend weights (mix)",
        (("engine/fast.py", "        self.static_inputs.mix.copy_(inputs.mix)\n", ""),),
    ),
    Mutation(
        "a3",
        "fresh inputs rebound to the name instead of copied into the buffers",
        (
            (
                "engine/fast.py",
                "        for static, fresh in zip(self.static_inputs.noise, inputs.noise, strict=True):\n"
                "            static.copy_(fresh)\n"
                "        self.static_inputs.mix.copy_(inputs.mix)\n",
                "        self.static_inputs = inputs\n",
            ),
        ),
    ),
    Mutation(
        "a4",
        "capture records the capture iteration's own inputs, not the static buffers",
        (("engine/fast.py", "lambda: self._iteration(static)", "lambda: self._iteration(inputs)"),),
    ),
    Mutation(
        "b",
        "never re-capture after the learning-rate decay",
        (
            (
                "engine/fast.py",
                "            self.recorded = False  # the learning rates",
                "            pass  #",
            ),
        ),
    ),
    Mutation(
        "c",
        "stale critic learning rate: only the generator's schedule steps on the fast path",
        (
            (
                "engine/fast.py",
                "        for scheduler in self.setup.schedulers:\n",
                "        for scheduler in self.setup.schedulers[:1]:\n",
            ),
        ),
    ),
    Mutation(
        "c2",
        "schedules stepped before the iteration: decay (and re-capture) one iteration early",
        (
            (
                "engine/fast.py",
                "        inputs = draw_iteration_inputs(self.model, self.setup, self.rng, stage0_input)\n",
                "        self._step_schedules()\n"
                "        inputs = draw_iteration_inputs(self.model, self.setup, self.rng, stage0_input)\n",
            ),
            (
                "engine/fast.py",
                "        self.iterations_done += 1\n        self._step_schedules()\n",
                "        self.iterations_done += 1\n",
            ),
        ),
    ),
    Mutation(
        "d",
        "losses read from the first record's outputs after the re-capture",
        (
            (
                "engine/fast.py",
                "            self.static_losses = self.recorder.capture(lambda: self._iteration(static))\n",
                "            new_losses = self.recorder.capture(lambda: self._iteration(static))\n"
                "            self.static_losses = self.static_losses if self.captures else new_losses\n",
            ),
        ),
    ),
    Mutation(
        "d2",
        "losses read from the last warm-up iteration (the record's outputs dropped)",
        (
            (
                "engine/fast.py",
                "            self.static_losses = self.recorder.capture(",
                "            self.recorder.capture(",
            ),
        ),
    ),
    Mutation(
        "e",
        "critic left frozen after the generator step",
        (
            (
                "engine/steps.py",
                "        model.discriminator.requires_grad_(True)  # also after",
                "        pass  # also after",
            ),
        ),
    ),
    Mutation(
        "e2",
        "critic left frozen after a failed capture (no finally, no unfreeze in the fallback)",
        (
            (
                "engine/steps.py",
                "    finally:\n        model.discriminator.requires_grad_(True)",
                "    except ZeroDivisionError:\n        pass\n    model.discriminator.requires_grad_(True)",
            ),
            ("engine/fast.py", "            self.model.discriminator.requires_grad_(True)\n", ""),
        ),
    ),
    Mutation(
        "e3",
        "only the fallback's unfreeze removed (generator_step's finally still unfreezes)",
        (("engine/fast.py", "            self.model.discriminator.requires_grad_(True)\n", ""),),
    ),
    Mutation(
        "f",
        "no warm-up: capture before Adam has state (check and default removed)",
        (
            ("engine/fast.py", "warmup_iterations: int = 3", "warmup_iterations: int = 0"),
            ("engine/fast.py", "if self.warmup_iterations < 1:", "if self.warmup_iterations < 0:"),
        ),
    ),
    Mutation(
        "g",
        "the capture iteration is not replayed (its update is lost)",
        (
            (
                "engine/fast.py",
                "        if not self.recorded and not self._capture(inputs):\n",
                "        if not self.recorded and self._capture(inputs):\n            return\n"
                "        if not self.recorded:\n",
            ),
        ),
    ),
    Mutation(
        "h",
        "plain Adam on the fast path (not fused, not capturable: reads its step count on the host)",
        (("engine/fast.py", "    if not options.fused_adam:\n", "    if True:\n"),),
    ),
)


def prepare(folder: Path, mutation: Mutation | None) -> None:
    for name in COPIED:
        source = ROOT / name
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    shutil.copy2(ROOT / "pyproject.toml", folder / "pyproject.toml")  # pytest's settings
    for file, text, replacement in mutation.edits if mutation else ():
        path = folder / file
        code = path.read_text()
        if code.count(text) != 1:
            raise SystemExit(f"mutation {mutation.key if mutation else ''}: text not found once in {file}")
        path.write_text(code.replace(text, replacement))


def failing_tests(folder: Path) -> list[str]:
    """Run the fast-path tests on the copy; the names of those that failed (or errored)."""
    # `python -m` puts the copy first on sys.path: `import engine` finds it, not the editable install
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no", "-rfE", *TESTS]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    names = re.findall(r"^(?:FAILED|ERROR) \S+::(\S+)", done.stdout, flags=re.MULTILINE)
    if done.returncode not in (0, 1):
        names.append(f"(pytest exit {done.returncode})")
    return names


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="mutation keys to run (default: all)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.key in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        prepare(baseline, None)
        if failing := failing_tests(baseline):
            raise SystemExit(f"the unmutated copy fails: {failing}")
        for mutation in chosen:
            folder = Path(tmp) / mutation.key
            prepare(folder, mutation)
            failed = failing_tests(folder)
            print(f"{mutation.key}: {', '.join(failed) or 'SURVIVED'}", flush=True)
            rows.append((mutation.key, mutation.breakage, ", ".join(failed) or "none (survived)"))
    print()
    print_table(["", "breakage", "CPU tests that went red"], rows)


if __name__ == "__main__":
    main()
