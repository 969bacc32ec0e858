"""Harmonization and editing at inference (spec §5): a naive cut-and-paste comes back in the scene's style.

The naive image enters the generator in place of z_rec[0] (resized to the injection stage), the model
renders it at its top-stage size, and the result is blended in where the mask says, through a dilated and
blurred mask. What is blended in is one of `COMPOSITES`:
- "detail" (the default): the rendering, upsampled, plus the naive image's own lightness detail above the
  model's resolution: up(rendered) + luma(naive - up(down(naive))), added equally to R, G and B. The model
  gives what it can express at its size (colour, tone, coarse texture: all of the chroma, the coarse
  lightness), the naive image keeps the fine structure, so the object stays as sharp as it was pasted.
  It is a two-level Laplacian pyramid split at the model's resolution, in lightness only; when the naive
  image is the model's size it equals "render". Per-channel RGB detail (naive + up(rendered - down(naive)))
  kept as much detail but also the object's own fine colour: rainbow fringes on the red dragon in the grey
  pencil drawing, and a Lab distance of 25.1 instead of 22.8 there (16.6 instead of 17.3 on scream).
- "render": the rendering itself, upsampled to the naive image's size (the original's output, which is
  the model's size). Everything finer than the model's resolution is lost: a 64-px quick model returns
  soft blobs in a 600-px image.
"detail" is the default by measurement (bench/harmonization.py, quick models): it keeps 0.94-0.99 of the
naive object's high-pass against 0.37-0.63, and moves its Lab statistics towards the painting nearly as far
as "render" does. Both composites blend through the same mask and serve editing models alike. The dilated
mask lets the model's colour spill a little past the object's outline (a faint glow with "detail", where
the rendering no longer hides it); a blend mask that hugs the outline removed it in a trial, not adopted.

Decisions:
- Background: the original composites against the training image. We composite against the naive image
  at its own resolution: outside the blended region the caller gets back exactly the pixels they sent
  (the training image may be another crop or resolution of the scene, and the naive image is what the
  caller asked to change), and the output has the naive image's size.
- Injection stage: 0 (the original's and the default) feeds the generator's head at the coarsest size.
  Stage k > 0 feeds the head at stage k's size and runs bodies k..last only: more of the naive image's
  structure survives, but those bodies were trained on features, not on the head's output, so expect
  weaker harmonization there. Fine-tuning (below) adapts the model to the naive image at stage 0.
- The mask is processed at the model's resolution, then resized to the naive image's size. The original's
  radii (dilation 7 or 20, blur sigma 5) are in pixels of its 250-px models; we scale them with the model's
  top-stage size, so a 64-px quick model blends the same fraction of the image (a paper model gets them
  unchanged). Gaussian taps stop at 4 sigma, so pixels farther than radius + 4 sigma (in model pixels)
  keep the naive image's values exactly.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time

import torch
import torch.nn.functional as F

from engine.fast import FastOptions, FastStage, backend_flags, optimizer_options
from engine.imresize import resize_to
from engine.model import TrainedModel
from engine.networks import upsample
from engine.noise import draw, make_rng
from engine.spec.config import COMPOSITES, DEFAULT_COMPOSITE, Composite
from engine.steps import stage_setup
from engine.training import Progress, ProgressCallback, ReferenceStage, StopCheck, TrainingCanceled

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # Y of Y'CbCr (BT.601, as JPEG): lightness from sRGB values
DILATION_RADIUS = {"harmonization": 7, "editing": 20}
BLUR_SIGMA = 5.0
REFERENCE_SIZE = 250  # the model size (longer side) the original's radii were chosen for


def binary_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A mask image ([1, C, H, W] in [-1, 1] or [0, 1]) -> {0, 1} float [1, 1, H, W], thresholded at half."""
    if mask.dim() != 4 or mask.shape[0] != 1:
        raise ValueError(f"mask must be [1, C, H, W], got {list(mask.shape)}")
    if tuple(mask.shape[-2:]) != size:
        raise ValueError(
            f"mask is {mask.shape[-1]}x{mask.shape[-2]} but the naive image is {size[1]}x{size[0]}; "
            "they must be the same size"
        )
    lowest = float(mask.min())
    unit = (mask + 1) / 2 if lowest < 0 else mask  # accept both value ranges
    binary = (unit.mean(dim=1, keepdim=True) > 0.5).float()
    if binary.sum() == 0:
        raise ValueError("mask is empty: mark the pasted object in white on black")
    return binary


def soft_mask(binary: torch.Tensor, radius: int, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Binary dilation with a disk, Gaussian blur, min-max normalisation: [1, 1, H, W] in [0, 1]."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    disk = ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2).float()[None, None]
    dilated = (F.conv2d(F.pad(binary, (radius,) * 4), disk.to(binary)) > 0.5).float()
    reach = math.ceil(4 * sigma)
    taps = torch.arange(-reach, reach + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(binary)
    blurred = F.conv2d(F.pad(dilated, (reach, reach, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    blurred = F.conv2d(F.pad(blurred, (0, 0, reach, reach), mode="replicate"), kernel.view(1, 1, -1, 1))
    span = blurred.max() - blurred.min()
    return (blurred - blurred.min()) / span if span > 0 else torch.ones_like(blurred)


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """MATLAB-style resize of [B, C, H, W] to an exact (H', W')."""
    height, width = image.shape[-2:]
    return resize_to(image, size, (size[0] / height, size[1] / width)).clamp(-1, 1)


@torch.no_grad()
def render(
    model: TrainedModel, naive: torch.Tensor, stage: int = 0, rng: torch.Generator | None = None
) -> torch.Tensor:
    """The model's rendition of the naive image (already at the model's size): [1, 3, H, W]."""
    cfg = model.config
    shapes = model.stage_shapes[: model.stages_done]
    head_input = resize_image(naive, shapes[stage])
    if cfg.mode == "editing":
        jitter = draw(tuple(head_input.shape), rng or make_rng(0, model.device))
        head_input = head_input + 0.1 * jitter.to(head_input.device)
    inputs = list(model.fixed_noise)
    inputs[stage] = head_input
    model.generator.eval()
    return model.generator(inputs, shapes, model.noise_amp, first=stage)


def keep_naive_detail(naive: torch.Tensor, naive_small: torch.Tensor, rendered: torch.Tensor) -> torch.Tensor:
    """up(rendered) + the naive image's lightness detail finer than the model's resolution.

    naive: [1, 3, H, W] in [-1, 1]; naive_small (what the model was given) and rendered: [1, 3, h, w].
    Returns [1, 3, H, W] in [-1, 1].
    """
    size = (int(naive.shape[2]), int(naive.shape[3]))
    fine = naive - _smooth_upsample(naive_small, size)  # [1, 3, H, W]: what the model never saw
    luma = torch.tensor(LUMA_WEIGHTS, dtype=naive.dtype, device=naive.device).view(1, 3, 1, 1)
    # Adding the same amount to R, G and B changes lightness only: the colour stays the model's.
    fine_lightness = (fine * luma).sum(dim=1, keepdim=True)  # [1, 1, H, W]
    return (_smooth_upsample(rendered, size) + fine_lightness).clamp(-1, 1)


def _smooth_upsample(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # Half-pixel centres (align_corners=False) like the MATLAB-style resize that made naive_small, so the
    # low-pass lands on the pixels it came from and `naive - up(down(naive))` holds only the fine detail.
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False)


def harmonize(
    model: TrainedModel,
    naive: torch.Tensor,
    mask: torch.Tensor,
    *,
    stage: int = 0,
    rng: torch.Generator | None = None,
    dilation_radius: int | None = None,
    blur_sigma: float | None = None,
    composite: Composite = DEFAULT_COMPOSITE,
) -> torch.Tensor:
    """naive: [1, 3, H, W] in [-1, 1] (any size), mask: [1, C, H, W] -> [1, 3, H, W] in [-1, 1].

    dilation_radius and blur_sigma (model pixels) default to the original's for the model's mode (7 or 20,
    and 5), scaled by the model's size / 250. composite: one of COMPOSITES (module docstring)."""
    if naive.dim() != 4 or naive.shape[:2] != (1, 3):
        raise ValueError(f"naive image must be [1, 3, H, W], got {list(naive.shape)}")
    if not 0 <= stage < model.stages_done:
        raise ValueError(f"stage must be between 0 and {model.stages_done - 1}, got {stage}")
    if composite not in COMPOSITES:
        raise ValueError(f"composite must be one of {', '.join(COMPOSITES)}, not {composite!r}")
    size = (int(naive.shape[2]), int(naive.shape[3]))
    device = model.device
    naive = naive.to(device)
    binary = binary_mask(mask.to(device), size)
    top = model.stage_shapes[model.stages_done - 1]
    small_mask = (resize_to(binary, top, (top[0] / size[0], top[1] / size[1])) > 0.5).float()
    if small_mask.sum() == 0:
        small_mask = (F.adaptive_max_pool2d(binary, top) > 0).float()  # a tiny mask must not vanish
    relative = max(top) / REFERENCE_SIZE
    if dilation_radius is None:
        base = DILATION_RADIUS.get(model.config.mode, DILATION_RADIUS["harmonization"])
        dilation_radius = max(1, round(base * relative))
    if blur_sigma is None:
        blur_sigma = max(0.5, BLUR_SIGMA * relative)
    soft = soft_mask(small_mask, dilation_radius, blur_sigma)
    blend = F.interpolate(soft, size=size, mode="bilinear", align_corners=False)
    naive_small = resize_image(naive, top)  # [1, 3, h, w]: the model's size
    rendered = render(model, naive_small, stage, rng)
    if composite == "detail":
        inserted = keep_naive_detail(naive, naive_small, rendered)
    else:
        inserted = upsample(rendered, size).clamp(-1, 1)
    return (1 - blend) * naive + blend * inserted


def fine_tune(
    model: TrainedModel,
    naive: torch.Tensor,
    iterations: int,
    *,
    rng: torch.Generator | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    progress_every: int = 10,
) -> TrainedModel:
    """Continue training the top stage with the naive image as the stage-0 input of every iteration.

    Returns a new model (the input is left untouched) with the same architecture and config.
    naive: [1, 3, H, W] in [-1, 1], any size (resized to the coarsest stage).
    """
    if not 1 <= iterations <= 20000:
        raise ValueError(f"fine-tuning iterations must be between 1 and 20000, got {iterations}")
    if not model.is_complete:
        raise ValueError("fine-tune a completely trained model")
    tuned = copy.deepcopy(model)
    rng = rng if rng is not None else make_rng(0, tuned.device)
    stage = tuned.stages_done - 1
    head_input = resize_image(naive.to(tuned.device), tuned.stage_shapes[0])
    tuned.generator.train()
    fast = tuned.device.type == "cuda"  # the same runner choice as `train(path="auto")`
    options = FastOptions()
    adam = optimizer_options(tuned.device, options) if fast else {}
    setup = stage_setup(tuned, stage, iterations, rng, adam)
    runner = FastStage(tuned, setup, rng, options) if fast else ReferenceStage(tuned, setup, rng)
    started = time.monotonic()
    with backend_flags(tuned.device, options) if fast else contextlib.nullcontext():
        for iteration in range(1, iterations + 1):
            if should_stop is not None and should_stop():
                raise TrainingCanceled(f"fine-tuning stopped at iteration {iteration}")
            runner.step(stage0_input=head_input)
            last = iteration == iterations
            if on_progress is not None and (iteration % progress_every == 0 or last):
                elapsed = time.monotonic() - started
                on_progress(
                    Progress(
                        stage=stage,
                        num_stages=tuned.num_stages,
                        iteration=iteration,
                        iters_per_stage=iterations,
                        losses=runner.report(final=last),
                        elapsed_s=elapsed,
                        fraction_done=iteration / iterations,
                        eta_s=elapsed * (iterations - iteration) / iteration,
                    )
                )
    tuned.generator.eval()
    return tuned
