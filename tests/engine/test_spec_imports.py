"""engine.spec is the engine's torch-free part: importing it (what the service's core and API do) loads no
torch, numpy, Pillow or safetensors, while `import engine` still gives the whole engine on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "PIL", "safetensors")

SCRIPT = """
import sys
import engine.spec
from engine.spec import TrainConfig, check_image_size, request_config, sr_request_problems, stage_sizes
cfg = request_config({"preset": "quick", "mode": "animation", "max_size": 48})
check_image_size(120, 160, cfg)
sizes = stage_sizes(120, 160, cfg)
assert sr_request_problems(*sizes[-1], 4.0) == []
print("LOADED=" + ",".join(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
print("ENGINE=" + ",".join(sorted(m for m in sys.modules if m.split(".")[0] == "engine")))
"""


def run_fresh(script: str) -> str:
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_engine_spec_loads_no_torch_numpy_or_pillow() -> None:
    out = run_fresh(f"HEAVY = {HEAVY!r}\n" + SCRIPT)
    assert "LOADED=\n" in out, out
    engine_modules = out.split("ENGINE=", 1)[1].strip().split(",")
    assert all(name == "engine" or name.startswith("engine.spec") for name in engine_modules), out


def test_the_engine_package_loads_its_torch_parts_on_first_use() -> None:
    out = run_fresh(
        "import sys, engine\n"
        "print('BEFORE', 'torch' in sys.modules)\n"
        "train, checkpoint = engine.train, engine.checkpoint\n"
        "print('AFTER', 'torch' in sys.modules, train.__module__, checkpoint.__name__)\n"
        "print('SAME', engine.TrainConfig is __import__('engine.spec').spec.TrainConfig)\n"
    )
    assert "BEFORE False" in out and "AFTER True engine.training engine.checkpoint" in out, out
    assert "SAME True" in out, out


def test_the_engine_package_names_what_it_has_and_refuses_the_rest() -> None:
    import engine

    # __all__ is exactly what the package exports lazily: each name in its table of homes or its submodules,
    # listed once (dir(engine) is __all__ itself, so comparing with it proves nothing)
    lazy = set(engine._HOME) | set(engine._SUBMODULES)
    assert sorted(engine.__all__) == sorted(lazy), set(engine.__all__) ^ lazy
    assert len(engine.__all__) == len(set(engine.__all__))
    # and each resolves, in a fresh interpreter where nothing was loaded yet (here earlier tests may have left
    # module attributes behind), to the object of the module the table names
    out = run_fresh(
        "import importlib, engine\n"
        "for name in engine.__all__:\n"
        "    home = engine._HOME.get(name)\n"
        "    value = getattr(engine, name)\n"
        "    expected = importlib.import_module(f'engine.{name}') if home is None "
        "else getattr(importlib.import_module(home), name)\n"
        "    assert value is expected, name\n"
        "print('RESOLVED', len(engine.__all__))\n"
    )
    assert f"RESOLVED {len(engine.__all__)}" in out, out
    with pytest.raises(AttributeError, match="no attribute 'srmath'"):
        engine.srmath  # noqa: B018 (moved to engine.spec.srmath; no old name left behind)
