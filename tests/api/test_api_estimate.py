"""`GET /v1/estimate`: seconds per stage and in all for a training's settings, the head included; a prior
before any measurement; the pyramid's 422s."""

from __future__ import annotations

from typing import Any

import pytest

from engine.spec import SRConfig
from tests.service_fixtures import scene_image


def test_the_estimate_has_every_stage_the_head_and_a_total(client: Any, caller: Any) -> None:
    query = {"width": 250, "height": 185, "preset": "quick", "max_size": 64, "train_stages": 4}
    plain = client.get("/v1/estimate", params=query, headers=caller.headers)
    assert plain.status_code == 200, plain.text
    body = plain.json()
    assert body["basis"] in ("prior", "measured") and body["sr_head"] is None
    pyramid = client.get("/v1/pyramid", params=query, headers=caller.headers).json()
    assert [(s["width"], s["height"]) for s in body["stages"]] == [
        (s["width"], s["height"]) for s in pyramid["stages"]
    ]
    assert all(s["iterations"] == 400 and s["seconds"] > 0 for s in body["stages"])
    assert abs(body["total_s"] - sum(s["seconds"] for s in body["stages"])) < 0.5
    with_head = client.get("/v1/estimate", params={**query, "sr_factor": 4}, headers=caller.headers).json()
    assert (
        with_head["sr_head"]["iterations"] == SRConfig.preset("quick").iterations
        and with_head["sr_head"]["seconds"] > 0
    )
    assert with_head["total_s"] > body["total_s"]
    more = client.get("/v1/estimate", params={**query, "max_size": 128}, headers=caller.headers).json()
    assert more["total_s"] > body["total_s"]  # a larger image costs more


def test_the_estimate_refuses_what_the_pyramid_refuses(client: Any, caller: Any) -> None:
    tiny = client.get(
        "/v1/estimate", params={"width": 10, "height": 10, "preset": "quick"}, headers=caller.headers
    )
    assert tiny.status_code == 422 and tiny.json()["errors"][0]["loc"] == ["query", "width"]
    unknown = client.get(
        "/v1/estimate", params={"width": 100, "height": 80, "colour": "red"}, headers=caller.headers
    )
    assert unknown.status_code == 422
    assert client.get("/v1/estimate", params={"width": 100, "height": 80}).status_code == 401


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"mode": "harmonization", "sr_factor": 4}, "sr_factor", "gets no super-resolution head"),
        ({"mode": "editing", "sr_factor": 2}, "sr_factor", "gets no super-resolution head"),
        ({"sr_iters": 300}, "sr_iters", "only used with sr_factor"),
    ],
)
def test_the_estimate_refuses_a_head_the_training_would_refuse(
    client: Any, caller: Any, params: dict[str, Any], field: str, says: str
) -> None:
    query = {"width": 100, "height": 80, "preset": "quick", **params}
    response = client.get("/v1/estimate", params=query, headers=caller.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert says in problem["detail"] and problem["errors"][0]["loc"] == ["query", field]
    # and POST /v1/models says the same
    files = {"image": ("scene.png", scene_image(100, 80), "image/png")}
    data = {key: str(value) for key, value in {"preset": "quick", **params}.items()}
    created = client.post("/v1/models", headers=caller.headers, data=data, files=files)
    assert created.status_code == 422 and says in created.json()["detail"]
