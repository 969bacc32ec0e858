"""Examples shown in the OpenAPI document (`/docs`): one per schema and per documented response."""

from __future__ import annotations

from typing import Any

MODEL_ID = "mdl_0193a1b2c3d4e5f60718293a4b5c"
TRAIN_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b5d"
SAMPLE_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b5f"
HARMONIZE_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b60"
ANIMATE_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b61"
S3 = "https://s3.example.com/consingan"

TIMES = {"created_at": "2026-11-25T09:00:00Z", "started_at": "2026-11-25T09:00:01Z", "finished_at": None}

# A multipart form's file part, as an example shows it (the part carries the file's bytes).
FILE = "(the file's bytes)"

MODEL_CREATE: dict[str, Any] = {
    "image": FILE,
    "preset": "quick",
    "mode": "generation",
    "seed": 7,
    "webhook_url": "https://example.com/hook",
}
SAMPLE_REQUEST: dict[str, Any] = {"n": 4, "seed": 1, "scale_h": 1.0, "scale_w": 1.5, "start_stage": 0}
HARMONIZATION_PARAMS: dict[str, Any] = {
    "stage": 0,
    "composite": "detail",
    "fine_tune": True,
    "fine_tune_iters": 50,
    "seed": 3,
}
HARMONIZATION_CREATE: dict[str, Any] = {"naive": FILE, "mask": FILE, **HARMONIZATION_PARAMS}
ANIMATION_CREATE: dict[str, Any] = {
    "frames": 100,
    "fps": 10,
    "alpha": 0.1,
    "beta": 0.9,
    "start_stage": 0,
    "format": "gif",
    "seed": 5,
}

MODEL: dict[str, Any] = {
    "id": MODEL_ID,
    "object": "model",
    "state": "running",
    "params": {"preset": "quick", "mode": "generation", "seed": 7},
    "train_config": None,
    "image": {"width": 250, "height": 188},
    "input_url": f"{S3}/models/{MODEL_ID}/input.png?X-Amz-Signature=...",
    "progress": {
        "stage": 2,
        "num_stages": 5,
        "iteration": 40,
        "iters_per_stage": 150,
        "percent": 48.5,
        "elapsed_s": 57.1,
        "eta_s": 61.0,
        "losses": {"critic": -0.4},
    },
    "error": None,
    "cancel_requested": False,
    "train_job_id": TRAIN_JOB_ID,
    "webhook_url": "https://example.com/hook",
    "webhook_events": ["model.succeeded", "model.failed"],
    **TIMES,
    "duration_s": None,
    "links": {"self": f"/v1/models/{MODEL_ID}"},
}

SAMPLE: dict[str, Any] = {
    "id": "smp_0193a1b2c3d4e5f60718293a4b5e",
    "model_id": MODEL_ID,
    "job_id": SAMPLE_JOB_ID,
    "width": 375,
    "height": 188,
    "size_bytes": 98765,
    "is_preview": False,
    "created_at": "2026-11-25T09:05:00Z",
    "url": f"{S3}/models/{MODEL_ID}/samples/smp_0193a1b2c3d4e5f60718293a4b5e.png?X-Amz-Signature=...",
}


def _job(job_id: str, kind: str, params: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "object": "job",
        "kind": kind,
        "state": "succeeded",
        "model_id": MODEL_ID,
        "params": params,
        "progress": None,
        "error": None,
        "attempts": 1,
        "cancel_requested": False,
        **TIMES,
        "finished_at": "2026-11-25T09:00:09Z",
        "duration_s": 8.2,
        "samples": [],
        "result": None,
        "links": {"self": f"/v1/jobs/{job_id}", "events": f"/v1/jobs/{job_id}/events"},
        **rest,
    }


def _file(job_id: str, name: str, media_type: str) -> dict[str, str]:
    url = f"{S3}/models/{MODEL_ID}/jobs/{job_id}/a1/{name}?X-Amz-Signature=..."
    return {"name": name, "media_type": media_type, "url": url}


SAMPLE_JOB = _job(SAMPLE_JOB_ID, "sample", SAMPLE_REQUEST, samples=[SAMPLE])
_COMPOSITE = _file(HARMONIZE_JOB_ID, "result.png", "image/png")
_TUNED = _file(HARMONIZE_JOB_ID, "checkpoint.safetensors", "application/octet-stream")
HARMONIZE_JOB = _job(
    HARMONIZE_JOB_ID,
    "harmonize",
    HARMONIZATION_PARAMS,
    result={"url": _COMPOSITE["url"], "checkpoint_url": _TUNED["url"], "files": [_COMPOSITE, _TUNED]},
)
_ANIMATION = _file(ANIMATE_JOB_ID, "animation.gif", "image/gif")
ANIMATE_JOB = _job(
    ANIMATE_JOB_ID,
    "animate",
    ANIMATION_CREATE,
    result={"url": _ANIMATION["url"], "files": [_ANIMATION], "width": 250, "height": 188, "frames": 100},
)


PROBLEM: dict[str, Any] = {
    "type": "https://consingan.dev/problems/validation",
    "title": "Request validation failed",
    "status": 422,
    "detail": "body.seed: Input should be greater than or equal to 0",
    "instance": "/v1/models",
    "errors": [
        {
            "loc": ["body", "seed"],
            "msg": "Input should be greater than or equal to 0",
            "type": "greater_than_equal",
        }
    ],
}

STAGE_DONE_EVENT: dict[str, Any] = {
    "id": 41,
    "type": "stage_done",
    "message": "stage 2 finished",
    "data": {"stages_done": 3, "stage": 2, "preview": {"width": 92, "height": 69}},
    "created_at": "2026-11-25T09:03:12Z",
    "links": {"preview": f"{S3}/models/{MODEL_ID}/stages/2.png?X-Amz-Signature=..."},
}

PYRAMID: dict[str, Any] = {
    "image": {"width": 1024, "height": 768},
    "top": {"width": 64, "height": 48},
    "stages": [
        {"width": 34, "height": 25},
        {"width": 40, "height": 30},
        {"width": 52, "height": 39},
        {"width": 64, "height": 48},
    ],
    "train_config": {"mode": "generation", "train_stages": 4, "iters_per_stage": 400, "max_size": 64},
}

SR_HEAD_CREATE: dict[str, Any] = {"factor": 4.0, "iterations": 2000, "replace": False, "seed": 9}
SUPER_RESOLUTION_CREATE: dict[str, Any] = {
    "factor": 4.0,
    "source": "training_image",
    "n": 1,
    "noise_scale": 1.0,
    "seed": 11,
}
SR_HEAD_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b62"
SUPER_RESOLVE_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b63"
SR_HEAD_JOB = _job(SR_HEAD_JOB_ID, "train_sr_head", SR_HEAD_CREATE)
_ENLARGED = _file(SUPER_RESOLVE_JOB_ID, "super_resolution_0.png", "image/png")
SUPER_RESOLVE_JOB = _job(
    SUPER_RESOLVE_JOB_ID,
    "super_resolve",
    {"factor": 4.0, "n": 1, "noise_scale": 1.0, "seed": 11, "sample_id": None},
    result={
        "url": _ENLARGED["url"],
        "checkpoint_url": None,
        "files": [_ENLARGED],
        "width": 1000,
        "height": 752,
        "frames": None,
        "input_width": 250,
        "input_height": 188,
        "factor": 4.0,
        "passes": 6,
        "step": 1.2599,
        "noise_amp": 0.0123,
        "warnings": [],
    },
)

ESTIMATE: dict[str, Any] = {
    "device": "cpu",
    "basis": "measured",
    "measurements": 12,
    "stages": [
        {"stage": 0, "width": 34, "height": 25, "iterations": 400, "seconds": 41.0},
        {"stage": 1, "width": 40, "height": 30, "iterations": 400, "seconds": 52.5},
        {"stage": 2, "width": 52, "height": 39, "iterations": 400, "seconds": 70.1},
        {"stage": 3, "width": 64, "height": 48, "iterations": 400, "seconds": 96.3},
    ],
    "sr_head": {"iterations": 600, "seconds": 75.0},
    "total_s": 334.9,
}
PAINTING_PARAMS: dict[str, Any] = {"stage": 1, "quantize": True, "n": 2, "seed": 13}
PAINTING_CREATE: dict[str, Any] = {"painting": FILE, **PAINTING_PARAMS}
PAINT_JOB_ID = "job_0193a1b2c3d4e5f60718293a4b64"
_PAINTED = [_file(PAINT_JOB_ID, f"paint_{i}.png", "image/png") for i in range(2)]
PAINT_JOB = _job(
    PAINT_JOB_ID,
    "paint",
    PAINTING_PARAMS,
    result={"url": _PAINTED[0]["url"], "files": _PAINTED, "width": 64, "height": 48, "stage": 1},
)
