"""Rules of the code base that import-linter cannot express."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "core", "worker", "engine")
SOURCES = [p for folder in (*PACKAGES, "bench") for p in sorted((ROOT / folder).rglob("*.py"))]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(source: str, own: str) -> list[str]:
    """`from our.module import _name`, and `our_module._name` where our_module was imported by name."""
    tree = ast.parse(source)
    found: list[str] = []
    imported_modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            if node.module == own:
                continue
            found += [f"from {node.module} import {a.name}" for a in node.names if is_private(a.name)]
            imported_modules |= {a.asname or a.name for a in node.names if not is_private(a.name)}
        elif isinstance(node, ast.Import):
            imported_modules |= {a.asname or a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    offenders = {
        str(p.relative_to(ROOT)): names
        for p in SOURCES
        if (names := private_imports(p.read_text(), module_name(p)))
    }
    assert offenders == {}


def test_the_rule_catches_what_it_should() -> None:
    source = "from worker.outcomes import _x, fail\nfrom worker import runtime\nruntime._y()\nfail._z\n"
    assert sorted(private_imports(source, "worker.kinds.probe")) == [
        "fail._z",
        "from worker.outcomes import _x",
        "runtime._y",
    ]
    assert private_imports("from worker.outcomes import _x\n", "worker.outcomes") == []  # its own names


def expression_predicates(source: str) -> list[str]:
    """`wait_for_function("an expression")`: Playwright evaluates an expression with eval() while it polls,
    which the page's Content-Security-Policy (script-src 'self') refuses; a function ("() => ...") runs."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "wait_for_function"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.lstrip().startswith(("(", "function", "async"))
        ):
            found.append(node.args[0].value)
    return found


def test_browser_waits_pass_functions_not_expressions() -> None:
    files = [*sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "bench").rglob("*.py"))]
    offenders = {
        str(f.relative_to(ROOT)): found for f in files if (found := expression_predicates(f.read_text()))
    }
    assert offenders == {}
    assert expression_predicates('page.wait_for_function("window.x === 1")') == ["window.x === 1"]
    assert expression_predicates('page.wait_for_function("() => window.x === 1")') == []
