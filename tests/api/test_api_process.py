"""The API process: no torch, no worker, of the engine only its torch-free rules (engine.spec); OpenAPI
complete with examples; health probes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from tests.service_fixtures import settings_env

NO_TORCH_SCRIPT = """
import sys
from fastapi.testclient import TestClient
from api.app import create_app
client = TestClient(create_app())
assert client.get("/healthz").status_code == 200
assert client.get("/openapi.json").status_code == 200
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy", "safetensors", "worker", "torchvision", "av"))
heavy += sorted(m for m in sys.modules if m.startswith("engine.") and not m.startswith("engine.spec"))
assert "engine.spec" in sys.modules  # core checks requests with the engine's own rules
print("HEAVY=" + ",".join(heavy))
"""


def test_api_process_never_imports_torch(settings: Any) -> None:
    env = {**os.environ, **settings_env(settings)}
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout or result.stdout.strip().endswith("HEAVY="), result.stdout


def test_openapi_lists_every_route_with_examples(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in [
        "/v1/models",
        "/v1/models/{model_id}",
        "/v1/models/{model_id}/cancel",
        "/v1/models/{model_id}/samples",
        "/v1/models/{model_id}/samples/{sample_id}/content",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths, path
    create = paths["/v1/models"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    assert "example" in json.dumps(create["responses"]["202"])
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert "examples" in json.dumps(spec["components"]["schemas"]["SampleRequest"])
    assert client.get("/docs").status_code == 200


def test_docs_load_their_scripts_from_this_server_not_a_cdn(client: Any) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn." not in html and "https://" not in html.replace("https://fastapi.tiangolo.com", ""), page
        assets = re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', html)
        assert assets, html
        for asset in assets:
            assert client.get(asset).status_code == 200, asset


def test_health_and_readiness(make_client: Any, storage: Any) -> None:
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok",
        "broker": "ok",
        "storage": "ok",
    }

    class DownStorage:
        def __getattr__(self, name: str) -> Any:
            return getattr(storage, name)

        def check(self) -> None:
            raise ConnectionError("no route to host")

    down = make_client(storage=DownStorage()).get("/readyz")
    assert down.status_code == 503 and down.json()["checks"]["storage"].startswith("unavailable")
