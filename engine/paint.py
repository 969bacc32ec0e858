"""Paint-to-image (SinGAN §4, `paint2image.py`; docs/consingan-spec.md §5b): a rough painting of the scene,
injected at a coarse stage of a model trained on the photo, comes back with the photo's textures.

The painting stands in for what stages 0 .. k-1 would have drawn: it is resized to stage k-1's size and read
by the head and body 0, the path on which the model learned to read an RGB image (a generation model's
reconstruction input at stage 0 is the stage-0 photo itself), and bodies k.. refine it with fresh noise
(through harmonization's injection, `engine.harmonization.inject` with `entry_body=0`), so n draws differ
in their texture only. k is 1 .. last, never 0: the coarsest stage is where a sample's layout comes from, and
the painting replaces exactly that. A low k lets more stages redraw it (more of the photo's texture, less of
the painting's detail); a high k keeps more of the painting's flat colours. At k = 1 this is the model's
stage-0 path with the painting as its input.

Entering at body k instead (the head's output straight into body k, as harmonization does for stage > 0)
lost the painting: on a 4-stage test model the result's coarse layout correlated -0.02..0.10 with the
painting, against 0.89..0.95 through body 0 (tests/engine/test_paint.py's model). Body k was trained on
the upsampled features of body k-1, never on the head's output.

The painting goes in with noise: painting + `noise` x N(0, 1) per pixel (PAINT_NOISE, 0.5, by default). SinGAN
does the same at its injection stage (painting + noise_amp[n] x z). Here the entry reads stage 0's input,
whose two training regimes are the stage-0 photo itself (reconstruction, no noise) and pure noise (samples,
amplitude 1); halfway between, the model draws its own texture into the painting's layout. Measured on a
quick colusseum model (stages 1-3): noise 0 keeps the layout best (low-pass correlation with the painting
0.95-0.97) but renders it smooth (finest-scale energy 0.08-0.13 of the photo's, below the posterized
painting's own); 0.5 keeps 0.88-0.91 of the layout with 0.25-0.6 of the photo's fine energy, arches and
shadows in the photo's style; 1.0 drops the layout to 0.78-0.85 and reads as the model's samples. With
noise 0 the n draws are nearly the same image (the features' noise above is small, amp ~0.02).

`quantize`: SinGAN's `quantization_flag` without its retraining. The training image's colours at stage k are
clustered with k-means (PALETTE_SIZE centres, a fixed seed) and every painting pixel is snapped to its
nearest centre, so a painting in roughly the right colours uses the photo's exact ones. The original also
trains stage k once more on the quantized photo (`train_paint`, a second model); we do not: a request stays
a single forward pass on the model as trained.
"""

from __future__ import annotations

import torch

from engine.harmonization import inject, resize_image
from engine.model import TrainedModel
from engine.noise import draw, draw_inputs, make_rng
from engine.spec.paint import (
    PAINT_MAX_DRAWS,
    PAINT_MODES,
    PAINT_NOISE,
    PAINT_NOISE_RANGE,
    PAINT_STAGE_DEFAULT,
    PAINT_STAGE_MIN,
    PALETTE_SIZE,
)

KMEANS_ITERATIONS = 30
KMEANS_SEED = 0  # the original's fixed random_state: the same photo always gets the same palette


def kmeans_palette(image: torch.Tensor, k: int = PALETTE_SIZE) -> torch.Tensor:
    """k-means centres of an image's colours: image [1, 3, H, W] in [-1, 1] -> [k, 3], sorted by lightness.

    k-means++ seeding from a fixed CPU generator, then Lloyd iterations; a centre that loses all its pixels
    stays where it was. Deterministic for a given image."""
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image must be [1, 3, H, W], got {list(image.shape)}")
    pixels = image[0].reshape(3, -1).T.detach().float().cpu()  # [P, 3]
    k = min(k, pixels.shape[0])
    rng = torch.Generator().manual_seed(KMEANS_SEED)
    first = int(torch.randint(pixels.shape[0], (1,), generator=rng))
    centres = pixels[first : first + 1]
    while centres.shape[0] < k:
        nearest = torch.cdist(pixels, centres).min(dim=1).values ** 2  # [P]
        if float(nearest.sum()) == 0:  # fewer distinct colours than k: repeat one
            centres = torch.cat([centres, centres[:1]])
            continue
        pick = int(torch.multinomial(nearest / nearest.sum(), 1, generator=rng))
        centres = torch.cat([centres, pixels[pick : pick + 1]])
    for _ in range(KMEANS_ITERATIONS):
        owner = torch.cdist(pixels, centres).argmin(dim=1)  # [P]
        sums = torch.zeros_like(centres).index_add_(0, owner, pixels)
        counts = torch.bincount(owner, minlength=k).unsqueeze(1).to(pixels.dtype)  # [k, 1]
        moved = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
        if torch.allclose(moved, centres):
            break
        centres = moved
    return centres[centres.sum(dim=1).argsort()]


def quantize_to_palette(image: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Every pixel replaced by its nearest palette colour: image [B, 3, H, W], palette [k, 3] -> [B, 3, H, W]."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be [B, 3, H, W], got {list(image.shape)}")
    if palette.dim() != 2 or palette.shape[1] != 3:
        raise ValueError(f"palette must be [k, 3], got {list(palette.shape)}")
    batch, _, height, width = image.shape
    pixels = image.permute(0, 2, 3, 1).reshape(-1, 3)  # [B*H*W, 3]
    palette = palette.to(image)
    nearest = torch.cdist(pixels, palette).argmin(dim=1)
    return palette[nearest].reshape(batch, height, width, 3).permute(0, 3, 1, 2).contiguous()


def model_palette(model: TrainedModel, stage: int, k: int = PALETTE_SIZE) -> torch.Tensor:
    """The training image's palette at `stage` (the original clusters the photo at the injection stage): [k, 3]."""
    return kmeans_palette(model.reals[stage], k)


def painting_input(model: TrainedModel, painting: torch.Tensor, stage: int) -> torch.Tensor:
    """The painting in place of the output of the stages below `stage`: [1, 3, H, W] -> [1, 3, H_k-1, W_k-1]."""
    return resize_image(painting, model.stage_shapes[stage - 1])


def paint_to_image(
    model: TrainedModel,
    painting: torch.Tensor,
    *,
    stage: int = PAINT_STAGE_DEFAULT,
    quantize: bool = False,
    n: int = 1,
    rng: torch.Generator | None = None,
    noise: float = PAINT_NOISE,
) -> torch.Tensor:
    """painting: [1, 3, H, W] in [-1, 1], any size (it is resized to the model's pyramid; paint in the
    training image's aspect ratio) -> [n, 3, H_top, W_top] in [-1, 1], n independent draws.

    stage: the injection stage, 1 .. stages_done - 1. quantize: snap the painting's colours to the training
    image's k-means palette first. noise: std of the per-pixel noise added to the painting where it
    enters, 0 .. 2 (module docstring)."""
    if painting.dim() != 4 or painting.shape[:2] != (1, 3):
        raise ValueError(f"painting must be [1, 3, H, W], got {list(painting.shape)}")
    if model.stages_done < 2:
        raise ValueError("paint-to-image needs a model with at least 2 trained stages")
    if not PAINT_STAGE_MIN <= stage < model.stages_done:
        raise ValueError(
            f"stage must be between 1 and {model.stages_done - 1}: the painting replaces the coarser "
            f"stages' output, so stage 0 has nothing to replace; got {stage}"
        )
    if not 1 <= n <= PAINT_MAX_DRAWS:
        raise ValueError(f"n must be between 1 and {PAINT_MAX_DRAWS}, got {n}")
    if not PAINT_NOISE_RANGE[0] <= noise <= PAINT_NOISE_RANGE[1]:
        raise ValueError(
            f"noise must be between {PAINT_NOISE_RANGE[0]} and {PAINT_NOISE_RANGE[1]}, got {noise}"
        )
    if model.config.mode not in PAINT_MODES:
        raise ValueError(
            f"a {model.config.mode} model cannot paint: train a {', '.join(PAINT_MODES)} model on the photo"
        )
    device = model.device
    painting = painting.to(device)
    if quantize:
        # at the training image's size first, as SinGAN does: clustering a 4096² upload pixel by pixel would
        # take ~1 GB for a picture about to be shrunk to a few dozen pixels anyway
        top = resize_image(painting, model.stage_shapes[model.stages_done - 1])
        painting = quantize_to_palette(top, model_palette(model, stage))
    image = painting_input(model, painting, stage).expand(n, -1, -1, -1)  # [n, 3, H_k-1, W_k-1]
    rng = rng if rng is not None else make_rng(0, device)
    image = image + noise * draw(tuple(image.shape), rng).to(device)
    above = [z.to(device) for z in draw_inputs(model.stage_shapes[: model.stages_done], model.config, rng, n)]
    return inject(model, image, stage - 1, above, entry_body=0)
