"""Checkpoints: one safetensors blob whose header metadata holds a JSON description. Never pickle.

Tensors: `generator.*`, `discriminator.*` (state dicts, BatchNorm buffers included), `reals.{k}`
(the pyramid), `fixed_noise.{k}` (z_rec). Metadata key `consingan`: JSON with the format version, the
TrainConfig, the per-stage noise amplitudes, the pyramid shapes and the number of finished stages.
Loading is strict: unknown versions, missing or extra tensors, and shape mismatches are errors.

SR heads (engine.sr) are stored the same way, in a blob of their own beside the model's: tensors `head.*`,
metadata key `consingan_sr_head` with the format version, the SRConfig, `sr_train`, `r0`, `K`, the noise
amplitude `noise_amp`, the top-image size it was trained on and the iterations done.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from engine.model import TrainedModel
from engine.networks import Discriminator, Generator
from engine.spec.config import TrainConfig
from engine.spec.srconfig import SRConfig
from engine.sr.head import SRHead, SRNet

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
    return _read_metadata(blob, METADATA_KEY, FORMAT, VERSION, "a ConSinGAN checkpoint")


def _read_metadata(blob: bytes, key: str, expected_format: str, version: int, what: str) -> dict[str, Any]:
    if len(blob) < 8:
        raise ValueError(f"not {what}: too short")
    (header_length,) = struct.unpack("<Q", blob[:8])
    if header_length > min(len(blob) - 8, 100_000_000):
        raise ValueError(f"not {what}: bad safetensors header length")
    try:
        header = json.loads(blob[8 : 8 + header_length])
        description = json.loads(header["__metadata__"][key])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"not {what}: {error}") from error
    if not isinstance(description, dict):
        raise ValueError(f"not {what}: its description is not a JSON object")
    if description.get("format") != expected_format or description.get("version") != version:
        raise ValueError(
            f"unsupported {what} format {description.get('format')} v{description.get('version')}"
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


SR_HEAD_FORMAT = "consingan-sr-head"
SR_HEAD_VERSION = 1
SR_HEAD_METADATA_KEY = "consingan_sr_head"


def sr_head_to_bytes(head: SRHead) -> bytes:
    tensors = {f"head.{name}": t.detach().cpu().contiguous() for name, t in head.net.state_dict().items()}
    description = {
        "format": SR_HEAD_FORMAT,
        "version": SR_HEAD_VERSION,
        "config": head.config.to_dict(),
        "sr_train": head.sr_train,
        "r0": head.r0,
        "K": head.passes,
        "noise_amp": float(head.noise_amp),
        "trained_on": list(head.trained_on),
        "iterations_done": head.iterations_done,
    }
    return save_tensors(tensors, metadata={SR_HEAD_METADATA_KEY: json.dumps(description)})


def read_sr_head_description(blob: bytes) -> dict[str, Any]:
    """The JSON description of an SR head blob (sr_train, r0, K, noise_amp, ...), without its tensors."""
    return _read_metadata(blob, SR_HEAD_METADATA_KEY, SR_HEAD_FORMAT, SR_HEAD_VERSION, "an SR head")


def sr_head_from_bytes(blob: bytes, device: torch.device | str = "cpu") -> SRHead:
    description = read_sr_head_description(blob)
    try:
        config = SRConfig.from_dict(description["config"])
        trained_on = tuple(int(v) for v in description["trained_on"])
        noise_amp = float(description["noise_amp"])
        iterations_done = int(description["iterations_done"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"SR head description is incomplete: {error}") from error
    net = SRNet(config)
    tensors = _section(load_tensors(blob), "head")
    expected = set(net.state_dict())
    if set(tensors) != expected or len(trained_on) != 2:
        raise ValueError(
            f"SR head tensors do not match its description: {sorted(set(tensors) ^ expected)[:5]}"
        )
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as error:  # a tensor of the wrong shape for the described config
        raise ValueError(f"SR head tensors do not match its config: {error}") from error
    net.eval()
    net.requires_grad_(False)
    head = SRHead(
        config=config,
        net=net,
        noise_amp=noise_amp,
        trained_on=(trained_on[0], trained_on[1]),
        iterations_done=iterations_done,
    )
    if head.passes != description.get("K") or abs(head.r0 - float(description.get("r0", 0.0))) > 1e-12:
        raise ValueError("SR head description: K and r0 do not follow from sr_train")
    return head.to(device)
