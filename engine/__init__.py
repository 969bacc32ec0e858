"""ConSinGAN in pure PyTorch: pyramid, networks, training, sampling, checkpoints.

image = engine.load_image(open("photo.jpg", "rb").read())            # [1, 3, H, W] in [-1, 1]
cfg = engine.TrainConfig.preset("paper", mode="generation")
model = engine.train(image, cfg, device="cuda", rng=engine.make_rng(0, "cuda"))
samples = engine.sample(model, n=16, rng=engine.make_rng(1, "cuda"))  # [16, 3, h, w]
blob = engine.checkpoint.to_bytes(model)
head = engine.train_sr_head(model, engine.SRConfig.preset("paper"), rng=engine.make_rng(2, "cuda"))
big = engine.super_resolve(model, head, 4.0, rng=engine.make_rng(3, "cuda"))  # [1, 3, 4h, 4w]
out = engine.paint_to_image(model, painting, stage=1, quantize=True, n=4)  # [4, 3, h, w]

The torch-free request rules (modes, presets, `TrainConfig`, stage sizes, SR limits) live in `engine.spec`.
Everything below is imported on first use, not with the package, so `import engine.spec` (what the
service's core does) never loads torch, numpy or Pillow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine import checkpoint
    from engine.fast import CapturedSampler, FastOptions
    from engine.harmonization import fine_tune, harmonize
    from engine.image import (
        animation_size,
        frames_to_animation,
        frames_to_gif,
        grid,
        load_image,
        to_png_bytes,
    )
    from engine.model import TrainedModel
    from engine.noise import make_rng
    from engine.paint import PALETTE_SIZE, kmeans_palette, model_palette, paint_to_image, quantize_to_palette
    from engine.sampling import animate, reconstruct, sample
    from engine.spec.config import COMPOSITES, MODES, PRESETS, TrainConfig
    from engine.spec.geometry import stage_sizes
    from engine.sr import SR_PRESETS, SRConfig, SRHead, super_resolve, train_sr_head
    from engine.training import Progress, TrainingCanceled, train

# where each public name lives: imported from there the first time it is asked for
_HOME = {
    "COMPOSITES": "engine.spec.config",
    "MODES": "engine.spec.config",
    "PRESETS": "engine.spec.config",
    "TrainConfig": "engine.spec.config",
    "stage_sizes": "engine.spec.geometry",
    "CapturedSampler": "engine.fast",
    "FastOptions": "engine.fast",
    "fine_tune": "engine.harmonization",
    "harmonize": "engine.harmonization",
    "animation_size": "engine.image",
    "frames_to_animation": "engine.image",
    "frames_to_gif": "engine.image",
    "grid": "engine.image",
    "load_image": "engine.image",
    "to_png_bytes": "engine.image",
    "TrainedModel": "engine.model",
    "make_rng": "engine.noise",
    "PALETTE_SIZE": "engine.paint",
    "kmeans_palette": "engine.paint",
    "model_palette": "engine.paint",
    "paint_to_image": "engine.paint",
    "quantize_to_palette": "engine.paint",
    "animate": "engine.sampling",
    "reconstruct": "engine.sampling",
    "sample": "engine.sampling",
    "SR_PRESETS": "engine.sr",
    "SRConfig": "engine.sr",
    "SRHead": "engine.sr",
    "super_resolve": "engine.sr",
    "train_sr_head": "engine.sr",
    "Progress": "engine.training",
    "TrainingCanceled": "engine.training",
    "train": "engine.training",
}
_SUBMODULES = ("checkpoint",)

__all__ = [
    "COMPOSITES",
    "MODES",
    "PALETTE_SIZE",
    "PRESETS",
    "SR_PRESETS",
    "CapturedSampler",
    "FastOptions",
    "Progress",
    "SRConfig",
    "SRHead",
    "TrainConfig",
    "TrainedModel",
    "TrainingCanceled",
    "animate",
    "animation_size",
    "checkpoint",
    "fine_tune",
    "frames_to_animation",
    "frames_to_gif",
    "grid",
    "harmonize",
    "kmeans_palette",
    "load_image",
    "make_rng",
    "model_palette",
    "paint_to_image",
    "quantize_to_palette",
    "reconstruct",
    "sample",
    "stage_sizes",
    "super_resolve",
    "to_png_bytes",
    "train",
    "train_sr_head",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"engine.{name}")
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    else:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    globals()[name] = value  # later lookups (and monkeypatching) see a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
