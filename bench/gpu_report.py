"""bench/gpu_check.py's summary.md: verdicts against the issue's goals, then one table per part."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SIFID_TOLERANCE = 1.1  # the fast path's SIFID at most this times the reference's
PAPER_GOAL_S = 30.0  # full paper defaults on the fast path, on an H100 (the original: 496 s)
SAMPLING_GOAL = 10_000.0  # samples/s at batch 64 for 250-px models


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _result(parts: dict[str, Any], name: str) -> dict[str, Any] | None:
    part = parts.get(name)
    return part.get("result") if part else None


def _sifid_mean(result: dict[str, Any] | None) -> float | None:
    sifid = result.get("sifid") if result else None
    return sifid["mean"] if isinstance(sifid, dict) else None


def _seconds(values: Sequence[float]) -> str:
    return " / ".join(f"{value:.1f}" for value in values)


def _mark(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[ok]


def _tests_passed(tests: dict[str, Any]) -> bool | None:
    """True when they ran and passed, None when they all skipped (no CUDA), else False."""
    if tests["returncode"] == 0 and "passed" in tests["summary"]:
        return True
    if tests["returncode"] == 0 and "skipped" in tests["summary"]:
        return None
    return False


def verdicts(parts: dict[str, Any], dry_run: bool) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    tests = _result(parts, "pytest")
    if tests:
        rows.append(("pytest -m gpu", "all pass", tests["summary"], _mark(_tests_passed(tests))))
    reference, fast = _result(parts, "reference"), _result(parts, "fast")
    ref_sifid, fast_sifid = _sifid_mean(reference), _sifid_mean(fast)
    if ref_sifid is not None and fast_sifid is not None:
        ratio = fast_sifid / ref_sifid
        measured = f"{fast_sifid:.4f} vs {ref_sifid:.4f} ({ratio:.2f}x)"
        rows.append(
            ("fast SIFID vs reference", f"<= {SIFID_TOLERANCE}x", measured, _mark(ratio <= SIFID_TOLERANCE))
        )
    else:
        rows.append(("fast SIFID vs reference", f"<= {SIFID_TOLERANCE}x", "missing (see part tables)", "n/a"))
    if reference and fast and not reference.get("stopped") and not fast.get("stopped"):
        speedup = reference["total_s"] / fast["total_s"]
        rows.append(("training speed-up, reduced iterations", "-", f"{speedup:.1f}x", "info"))
    paper = _result(parts, "paper")
    if paper:
        done = not paper.get("stopped")
        measured = f"{paper['total_s']:.1f} s" + ("" if done else " (stopped: " + paper["stopped"] + ")")
        goal = f"<= {PAPER_GOAL_S:.0f} s on an H100"
        rows.append(
            (
                "paper defaults, fast path",
                goal,
                measured,
                _mark(None if dry_run else done and paper["total_s"] <= PAPER_GOAL_S),
            )
        )
    sampling = _result(parts, "sampling")
    if sampling and sampling["rows"]:
        top = sampling["rows"][-1]
        best = max(top["captured"], top["captured_bf16"])
        goal = f">= {SAMPLING_GOAL:,.0f}/s at batch 64"
        measured = f"{best:,.0f}/s at batch {top['batch']}"
        rows.append(
            (
                "sampling throughput",
                goal,
                measured,
                _mark(None if dry_run else top["batch"] == 64 and best >= SAMPLING_GOAL),
            )
        )
    concurrency = _result(parts, "concurrency")
    if concurrency and concurrency["rows"]:
        best_row = max(concurrency["rows"], key=lambda row: row["models_per_hour"])
        first = concurrency["rows"][0]["models_per_hour"]
        measured = f"{best_row['concurrent']} at once: {best_row['models_per_hour']:.0f} models/h ({best_row['models_per_hour'] / first:.2f}x of 1)"
        rows.append(("best worker concurrency", "decides the default", measured, "info"))
    return ["## Verdicts", "", *markdown_table(["check", "goal", "measured", ""], rows)]


def training_section(parts: dict[str, Any]) -> list[str]:
    results = [r for r in (_result(parts, "reference"), _result(parts, "fast")) if r]
    if not results:
        return []
    baseline = results[0]
    lines = [f"## Reference vs fast path, {baseline['iters_per_stage']} iterations per stage", ""]
    rows = []
    for r in results:
        speedup = baseline["total_s"] / r["total_s"] if r["total_s"] else float("nan")
        per_stage = [
            f"{b / f:.1f}x" for b, f in zip(baseline["stage_s"], r["stage_s"], strict=False) if f > 0
        ]
        sifid = (
            r["sifid"] if isinstance(r["sifid"], str) else "{mean:.4f} / {median:.4f}".format(**r["sifid"])
        )
        rows.append(
            (
                r["path"],
                _seconds(r["stage_s"]),
                f"{r['total_s']:.1f}",
                f"{speedup:.2f}x",
                " / ".join(per_stage),
                f"{r['peak_mib']:.0f}",
                sifid,
                r.get("stopped") or "",
            )
        )
    header = [
        "path",
        "s per stage",
        "total s",
        "speed-up",
        "per stage",
        "peak MiB",
        "SIFID mean / median",
        "stopped",
    ]
    return [*lines, *markdown_table(header, rows), *warning_lines(results)]


def warning_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """What the trainings warned about: a CUDA graph capture that fell back to eager shows here."""
    lines = [f"- {r['path']} warned: {w}" for r in results for w in r.get("warnings", [])]
    return [*lines, ""] if lines else []


def paper_section(parts: dict[str, Any]) -> list[str]:
    paper = _result(parts, "paper")
    if not paper:
        return []
    sifid = (
        paper["sifid"]
        if isinstance(paper["sifid"], str)
        else "{mean:.4f} / {median:.4f}".format(**paper["sifid"])
    )
    rows = [
        ("iterations per stage", paper["iters_per_stage"]),
        ("s per stage", _seconds(paper["stage_s"])),
        ("total s", f"{paper['total_s']:.1f}"),
        ("peak MiB", f"{paper['peak_mib']:.0f}"),
        ("SIFID mean / median", sifid),
        ("sample grid", paper.get("grid", "-")),
        ("stopped", paper.get("stopped") or "no"),
    ]
    return [
        "## Fast path at the paper defaults",
        "",
        *markdown_table(["", ""], rows),
        *warning_lines([paper]),
    ]


def sampling_section(parts: dict[str, Any]) -> list[str]:
    sampling = _result(parts, "sampling")
    if not sampling:
        return []
    height, width = sampling["size"]
    rows = [
        (
            row["batch"],
            f"{row['eager']:,.0f}",
            f"{row['captured']:,.0f}",
            f"{row['captured_bf16']:,.0f}",
            f"{max(row['captured'], row['captured_bf16']) / row['eager']:.1f}x",
        )
        for row in sampling["rows"]
    ]
    header = ["batch", "eager", "captured fp32", "captured bf16 + channels-last", "best vs eager"]
    title = f"## Sampling, samples/s at {height}x{width} ({sampling['model']})"
    return [title, "", *markdown_table(header, rows)]


def concurrency_section(parts: dict[str, Any]) -> list[str]:
    concurrency = _result(parts, "concurrency")
    if not concurrency:
        return []
    rows = concurrency["rows"]
    reference = rows[0]["models_per_hour"] if rows else 1.0
    table = [
        (
            row["concurrent"],
            f"{row['wall_s']:.1f}",
            _seconds(row["train_s"]),
            f"{row['models_per_hour']:.0f}",
            f"{row['models_per_hour'] / reference:.2f}x",
        )
        for row in rows
    ]
    title = f"## Trainings sharing the device ({concurrency['preset']} preset, {concurrency['iters_per_stage']} iterations per stage)"
    header = ["at once", "wall s", "each one's s", "models/hour", "vs 1"]
    return [title, "", *markdown_table(header, table)]


def pytest_section(parts: dict[str, Any]) -> list[str]:
    tests = _result(parts, "pytest")
    if not tests:
        return []
    lines = ["## pytest -m gpu", "", f"`{tests['summary']}` (exit {tests['returncode']})", ""]
    return lines + [f"- {line}" for line in tests["failed"]] + ([""] if tests["failed"] else [])


def parts_section(parts: dict[str, Any]) -> list[str]:
    rows = [
        (name, part["status"], f"{part['seconds']:.0f}", f"{part['budget_s']:.0f}", part.get("error", ""))
        for name, part in parts.items()
    ]
    return ["## Parts", "", *markdown_table(["part", "status", "s", "budget s", "error"], rows)]


def summary(header: dict[str, Any], parts: dict[str, Any]) -> str:
    env = header.get("environment") or {}
    lines = [
        "# GPU check of the fast training path (issue #12)"
        + (" — DRY RUN, tiny settings" if header["dry_run"] else ""),
        "",
        f"device {env.get('device', '?')}, torch {env.get('torch', '?')} (CUDA {env.get('cuda')}), "
        f"python {env.get('python', '?')}; image {header['image']}; {header['elapsed_s']:.0f} s of "
        f"{header['budget_s']:.0f} s",
        "",
        *verdicts(parts, header["dry_run"]),
        *pytest_section(parts),
        *training_section(parts),
        *paper_section(parts),
        *sampling_section(parts),
        *concurrency_section(parts),
        *parts_section(parts),
    ]
    return "\n".join(lines) + "\n"
