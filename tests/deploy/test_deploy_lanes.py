"""The two lanes in the compose stack: a long-lane `worker` and a warm `worker-interactive` on the same GPU,
each consuming its lane's queue as core.queue names it; the file valid against the Compose schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.queue import lane_queue
from core.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SCHEMA = Path("/work/shared/schemas/compose-spec.json")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded["services"]


def _queues(command: list[str]) -> list[str]:
    return command[command.index("-Q") + 1].split(",")


def test_each_lane_has_its_worker_on_the_gpu(services: dict[str, Any]) -> None:
    defaults = get_settings()
    long, interactive = services["worker"], services["worker-interactive"]
    assert _queues(long["command"]) == [lane_queue(defaults, "long")]
    assert _queues(interactive["command"]) == [lane_queue(defaults, "interactive")]
    assert interactive["environment"]["CONSINGAN_WORKER_LANE"] == "interactive"
    assert "CONSINGAN_WORKER_LANE" not in long["environment"]  # the default: long, a process per job
    assert interactive["environment"]["CONSINGAN_MODEL_CACHE_BYTES"]
    # one warm process: no --max-tasks-per-child, no extra concurrency
    assert "--concurrency=1" in interactive["command"]
    assert not any(arg.startswith("--max-tasks-per-child") for arg in interactive["command"])
    for worker in (long, interactive):
        assert worker["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
        assert worker["build"]["dockerfile"] == "Dockerfile.gpu"
        assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    ports = {s["environment"].get("CONSINGAN_WORKER_METRICS_PORT") for s in (long, interactive)}
    assert None not in ports and len(ports) == 2  # each worker serves its own metrics, on a port it is given


def test_compose_file_is_valid_against_the_compose_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not COMPOSE_SCHEMA.exists():
        pytest.skip(f"{COMPOSE_SCHEMA} is not on this machine")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
