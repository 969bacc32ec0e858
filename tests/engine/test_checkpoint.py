from __future__ import annotations

import json
import struct

import pytest
import torch

import engine
from engine import TrainedModel
from engine.checkpoint import from_bytes, read_description, to_bytes


def test_round_trip_samples_bit_identically(trained: TrainedModel) -> None:
    restored = from_bytes(to_bytes(trained))
    assert torch.equal(
        engine.sample(trained, 4, rng=engine.make_rng(11)),
        engine.sample(restored, 4, rng=engine.make_rng(11)),
    )
    assert torch.equal(
        engine.sample(trained, 2, rng=engine.make_rng(2), scale=(1.0, 1.5)),
        engine.sample(restored, 2, rng=engine.make_rng(2), scale=(1.0, 1.5)),
    )
    assert restored.config == trained.config and restored.noise_amp == trained.noise_amp


def test_blob_is_safetensors_with_a_json_description(trained: TrainedModel) -> None:
    blob = to_bytes(trained)
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + length])
    assert "generator.head.conv.weight" in header
    description = read_description(blob)
    assert description["version"] == 1 and description["stages_done"] == 2
    assert description["stage_shapes"] == [list(s) for s in trained.stage_shapes]
    assert description["config"]["train_stages"] == 2


def test_batch_norm_models_round_trip(image: torch.Tensor) -> None:
    from tests.engine.conftest import tiny_config

    model = engine.train(image, tiny_config(mode="retarget", batch_norm=True, iters_per_stage=2))
    restored = from_bytes(to_bytes(model))
    assert torch.equal(
        engine.sample(model, 2, rng=engine.make_rng(0)), engine.sample(restored, 2, rng=engine.make_rng(0))
    )


@pytest.mark.parametrize("blob", [b"", b"garbage!", b'\x08\x00\x00\x00\x00\x00\x00\x00{"a": 1}'])
def test_garbage_is_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        from_bytes(blob)


def test_tampered_tensor_set_is_refused(trained: TrainedModel) -> None:
    from safetensors.torch import load, save

    blob = to_bytes(trained)
    tensors = load(blob)
    del tensors["fixed_noise.1"]
    (length,) = struct.unpack("<Q", blob[:8])
    metadata = json.loads(blob[8 : 8 + length])["__metadata__"]
    with pytest.raises(ValueError):
        from_bytes(save(tensors, metadata=metadata))
