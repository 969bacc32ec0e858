"""Checkpoints: one safetensors blob whose header metadata holds a JSON description. Never pickle.

Tensors: `generator.*`, `discriminator.*` (state dicts, BatchNorm buffers included), `reals.{k}`
(the pyramid), `fixed_noise.{k}` (z_rec). Metadata key `consingan`: JSON with the format version, the
TrainConfig, the per-stage noise amplitudes, the pyramid shapes and the number of finished stages.
Loading is strict: unknown versions, missing or extra tensors, and shape mismatches are errors.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from engine.config import TrainConfig
from engine.model import TrainedModel
from engine.networks import Discriminator, Generator

FORMAT = "consingan-checkpoint"
VERSION = 1
METADATA_KEY = "consingan"


def to_bytes(model: TrainedModel) -> bytes:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("generator", model.generator), ("discriminator", model.discriminator)):
        for name, tensor in module.state_dict().items():
            tensors[f"{prefix}.{name}"] = tensor.detach().cpu().contiguous()
    for k, real in enumerate(model.reals):
        tensors[f"reals.{k}"] = real.detach().cpu().contiguous()
    for k, noise in enumerate(model.fixed_noise):
        tensors[f"fixed_noise.{k}"] = noise.detach().cpu().contiguous()
    description = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "noise_amp": [float(a) for a in model.noise_amp],
        "stage_shapes": [list(s) for s in model.stage_shapes],
        "stages_done": model.stages_done,
    }
    return save_tensors(tensors, metadata={METADATA_KEY: json.dumps(description)})


def read_description(blob: bytes) -> dict[str, Any]:
    """The JSON description from a checkpoint's header, without loading any tensor."""
    if len(blob) < 8:
        raise ValueError("not a checkpoint: too short")
    (header_length,) = struct.unpack("<Q", blob[:8])
    if header_length > min(len(blob) - 8, 100_000_000):
        raise ValueError("not a checkpoint: bad safetensors header length")
    try:
        header = json.loads(blob[8 : 8 + header_length])
        description = json.loads(header["__metadata__"][METADATA_KEY])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"not a ConSinGAN checkpoint: {error}") from error
    if description.get("format") != FORMAT or description.get("version") != VERSION:
        raise ValueError(
            f"unsupported checkpoint format {description.get('format')} v{description.get('version')}"
        )
    return dict(description)


def from_bytes(blob: bytes, device: torch.device | str = "cpu") -> TrainedModel:
    description = read_description(blob)
    tensors = load_tensors(blob)
    config = TrainConfig.from_dict(description["config"])
    stages_done = int(description["stages_done"])
    generator = Generator(config)
    for _ in range(max(stages_done, 1) - 1):
        generator.grow()
    discriminator = Discriminator(config)
    generator.load_state_dict(_section(tensors, "generator"), strict=True)
    discriminator.load_state_dict(_section(tensors, "discriminator"), strict=True)
    reals = _numbered(tensors, "reals", config.train_stages)
    fixed_noise = _numbered(tensors, "fixed_noise", stages_done)
    expected = {f"generator.{n}" for n in generator.state_dict()} | {
        f"discriminator.{n}" for n in discriminator.state_dict()
    }
    expected |= {f"reals.{k}" for k in range(len(reals))} | {f"fixed_noise.{k}" for k in range(stages_done)}
    if set(tensors) != expected:
        raise ValueError(
            f"checkpoint tensors do not match its description: {sorted(set(tensors) ^ expected)[:5]}"
        )
    if [list(r.shape[2:]) for r in reals] != description["stage_shapes"]:
        raise ValueError("checkpoint pyramid does not match its stage shapes")
    model = TrainedModel(
        config=config,
        generator=generator,
        discriminator=discriminator,
        reals=reals,
        fixed_noise=fixed_noise,
        noise_amp=[float(a) for a in description["noise_amp"]],
    )
    model.generator.eval()
    return model.to(device)


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {name[start:]: t for name, t in tensors.items() if name.startswith(prefix + ".")}


def _numbered(tensors: dict[str, torch.Tensor], prefix: str, count: int) -> list[torch.Tensor]:
    try:
        return [tensors[f"{prefix}.{k}"] for k in range(count)]
    except KeyError as error:
        raise ValueError(f"checkpoint is missing {error}") from error
