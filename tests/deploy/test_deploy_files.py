"""The compose stack, the images and .env.example, checked without Docker (these machines cannot run it):
structure by parsing, and `docker compose config -q` where the compose plugin exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_every_setting_is_documented_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    missing = [name for name in Settings.model_fields if not re.search(rf"\bCONSINGAN_{name.upper()}=", text)]
    assert missing == []


def test_compose_services_and_their_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "migrate",
        "api",
        "worker",
        "webhooks",
        "beat",
    }
    for name in ("postgres", "redis", "minio", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["minio-init"]["image"].startswith("minio/mc")
    assert "mc mb --ignore-existing" in " ".join(services["minio-init"]["command"])
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "webhooks", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["api"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    for name in ("minio-init", "migrate"):
        assert services[name]["restart"] == "no"


def test_images_api_without_torch_worker_on_the_gpu(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["api"]["build"]["dockerfile"] == "Dockerfile"
    assert services["migrate"]["image"] == services["api"]["image"]
    for name in ("worker", "webhooks", "beat"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile.gpu", name
    worker = services["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    command = " ".join(worker["command"])
    assert "-Q gpu" in command and "--concurrency=${WORKER_CONCURRENCY:-1}" in command
    assert "-Q webhooks" in " ".join(services["webhooks"]["command"])
    assert "deploy" not in services["webhooks"] and "deploy" not in services["api"]
    assert services["beat"]["command"][3] == "beat"
    env = services["api"]["environment"]
    assert env["CONSINGAN_QUEUE_MODE"] == "celery" and env["CONSINGAN_STORAGE_BACKEND"] == "s3"
    assert env["CONSINGAN_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_dockerfiles_pin_their_bases_and_run_as_a_user() -> None:
    api = (ROOT / "Dockerfile").read_text()
    gpu = (ROOT / "Dockerfile.gpu").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim", api, re.M) and "pip install . " in api
    assert "torch" not in re.sub(r"#.*", "", api).replace("find_spec('torch')", "")
    assert gpu.count("\nFROM ") + gpu.startswith("FROM ") >= 2 and " AS build" in gpu  # multi-stage
    assert "ARG TORCH_VERSION=2.11.0" in gpu and "download.pytorch.org/whl/cu" in gpu
    for text in (api, gpu):
        assert "\nUSER app" in text and "useradd" in text


def test_docker_compose_config_validates() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    result = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_beat_schedule_files_are_ignored() -> None:
    assert "celerybeat-schedule*" in (ROOT / ".gitignore").read_text().split()
