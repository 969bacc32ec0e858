"""GET /metrics: requests by route template and status, latency, jobs by state; GET /readyz says what failed."""

from __future__ import annotations

from typing import Any


def test_metrics_count_requests_by_route_template_and_jobs_by_state(
    client: Any, caller: Any, queue: Any
) -> None:
    from tests.service_fixtures import scene_image

    client.get("/v1/models/mdl_0193a1b2c3d4e5f60718293a4b5c", headers=caller.headers)  # 404
    created = client.post(
        "/v1/models", headers=caller.headers, files={"image": ("a.png", scene_image(), "image/png")}
    )
    assert created.status_code == 202
    client.get("/no/such/path")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'consingan_http_requests_total{method="GET",route="/v1/models/{model_id}",status="404"} 1.0' in text
    )
    assert 'consingan_http_requests_total{method="POST",route="/v1/models",status="202"} 1.0' in text
    assert 'route="unmatched"' in text and "mdl_0193a1b2c3d4e5f60718293a4b5c" not in text
    assert 'consingan_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/models"}' in text
    assert 'consingan_jobs{kind="train",state="queued"}' in text


def test_readyz_names_the_dependency_that_failed(make_client: Any, storage: Any) -> None:
    class DownStorage:
        def __getattr__(self, name: str) -> Any:
            return getattr(storage, name)

        def check(self) -> None:
            raise ConnectionError("no route to host")

    response = make_client(storage=DownStorage()).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "broker": "ok",
        "storage": "unavailable: ConnectionError",
    }
