"""ConSinGAN in pure PyTorch: pyramid, networks, training, sampling, checkpoints.

image = engine.load_image(open("photo.jpg", "rb").read())            # [1, 3, H, W] in [-1, 1]
cfg = engine.TrainConfig.preset("paper", mode="generation")
model = engine.train(image, cfg, device="cuda", rng=engine.make_rng(0, "cuda"))
samples = engine.sample(model, n=16, rng=engine.make_rng(1, "cuda"))  # [16, 3, h, w]
blob = engine.checkpoint.to_bytes(model)
"""

from engine import checkpoint
from engine.config import MODES, PRESETS, TrainConfig
from engine.fast import CapturedSampler, FastOptions
from engine.harmonization import COMPOSITES, fine_tune, harmonize
from engine.image import frames_to_gif, grid, load_image, to_png_bytes
from engine.model import TrainedModel
from engine.noise import make_rng
from engine.pyramid import stage_sizes
from engine.sampling import animate, reconstruct, sample
from engine.training import Progress, TrainingCanceled, train

__all__ = [
    "COMPOSITES",
    "MODES",
    "PRESETS",
    "CapturedSampler",
    "FastOptions",
    "Progress",
    "TrainConfig",
    "TrainedModel",
    "TrainingCanceled",
    "animate",
    "checkpoint",
    "fine_tune",
    "frames_to_gif",
    "grid",
    "harmonize",
    "load_image",
    "make_rng",
    "reconstruct",
    "sample",
    "stage_sizes",
    "to_png_bytes",
    "train",
]
