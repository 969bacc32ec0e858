"""ConSinGAN in pure PyTorch: pyramid, networks, training, sampling, checkpoints.

image = engine.load_image(open("photo.jpg", "rb").read())            # [1, 3, H, W] in [-1, 1]
cfg = engine.TrainConfig.preset("paper", mode="generation")
model = engine.train(image, cfg, device="cuda", rng=engine.make_rng(0, "cuda"))
samples = engine.sample(model, n=16, rng=engine.make_rng(1, "cuda"))  # [16, 3, h, w]
blob = engine.checkpoint.to_bytes(model)
head = engine.train_sr_head(model, engine.SRConfig.preset("paper"), rng=engine.make_rng(2, "cuda"))
big = engine.super_resolve(model, head, 4.0, rng=engine.make_rng(3, "cuda"))  # [1, 3, 4h, 4w]
"""

from engine import checkpoint
from engine.config import COMPOSITES, MODES, PRESETS, TrainConfig
from engine.fast import CapturedSampler, FastOptions
from engine.geometry import stage_sizes
from engine.harmonization import fine_tune, harmonize
from engine.image import animation_size, frames_to_animation, frames_to_gif, grid, load_image, to_png_bytes
from engine.model import TrainedModel
from engine.noise import make_rng
from engine.sampling import animate, reconstruct, sample
from engine.sr import SR_PRESETS, SRConfig, SRHead, super_resolve, train_sr_head
from engine.training import Progress, TrainingCanceled, train

__all__ = [
    "COMPOSITES",
    "MODES",
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
    "load_image",
    "make_rng",
    "reconstruct",
    "sample",
    "stage_sizes",
    "super_resolve",
    "to_png_bytes",
    "train",
    "train_sr_head",
]
