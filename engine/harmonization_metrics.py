"""How a harmonization treats the pasted object: how much of its detail survives, how much style it takes.

- `detail_kept`: Pearson correlation, inside the object's mask, between the Laplacian (a 3x3 high-pass) of
  the result's lightness L* and that of the naive image. 1.0: the pasted object's fine structure is all
  there (its contrast may differ: correlation ignores scale); near 0: it was replaced or blurred away.
- `colour_distance`: Euclidean distance between two regions' Lab colour statistics, the 6-vector (mean L*,
  a*, b*, std L*, a*, b*). Measured between the object (inside the mask) and the painting around it (a
  ring outside the mask in the naive image), before (naive) and after (result): a harmonized object moves
  towards its surroundings.

Both work at the naive image's full resolution; the bench and the tests share them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.colour import rgb_to_lab

_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def _check_region(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """region: [1, 1, H, W] bool (or {0, 1}) the size of image [1, 3, H, W] -> [H, W] bool."""
    if region.shape != (1, 1, *image.shape[-2:]):
        raise ValueError(f"region must be [1, 1, H, W] matching the image, got {list(region.shape)}")
    selected = region[0, 0] > 0.5 if region.dtype != torch.bool else region[0, 0]
    if int(selected.sum()) < 2:
        raise ValueError("region has fewer than 2 pixels")
    return selected


def lightness_high_pass(image: torch.Tensor) -> torch.Tensor:
    """[1, 3, H, W] in [-1, 1] -> [H, W]: the Laplacian of L* (replicated borders)."""
    lightness = rgb_to_lab(image)[:, :1]  # [1, 1, H, W]
    kernel = torch.tensor(_LAPLACIAN, dtype=lightness.dtype, device=lightness.device).view(1, 1, 3, 3)
    return F.conv2d(F.pad(lightness, (1, 1, 1, 1), mode="replicate"), kernel)[0, 0]


def detail_kept(result: torch.Tensor, naive: torch.Tensor, region: torch.Tensor) -> float:
    """Correlation of the high-passes of result and naive ([1, 3, H, W] each) over region [1, 1, H, W]."""
    if result.shape != naive.shape:
        raise ValueError(f"result {list(result.shape)} and naive {list(naive.shape)} differ in size")
    selected = _check_region(naive, region)
    ours = lightness_high_pass(result)[selected].double()
    theirs = lightness_high_pass(naive)[selected].double()
    ours, theirs = ours - ours.mean(), theirs - theirs.mean()
    spread = ours.norm() * theirs.norm()
    if theirs.norm() == 0:
        raise ValueError("the naive image is flat inside the region: there is no detail to keep")
    return float((ours * theirs).sum() / spread) if spread > 0 else 0.0


def colour_statistics(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """[1, 3, H, W] in [-1, 1] and region [1, 1, H, W] -> [6] float64: mean L*, a*, b*, then their stds."""
    selected = _check_region(image, region)
    lab = rgb_to_lab(image.double())[0][:, selected]  # [3, N]
    return torch.cat([lab.mean(dim=1), lab.std(dim=1, correction=0)])


def colour_distance(first: torch.Tensor, second: torch.Tensor) -> float:
    """Euclidean distance between two `colour_statistics` vectors (Lab units)."""
    return float((first - second).norm())


def surrounding_ring(region: torch.Tensor, width: int) -> torch.Tensor:
    """The pixels within `width` (Chebyshev distance) of region [1, 1, H, W] but outside it: bool, same shape."""
    if width < 1:
        raise ValueError(f"ring width must be at least 1 pixel, got {width}")
    inside = (region > 0.5).float() if region.dtype != torch.bool else region.float()
    size = 2 * width + 1
    # a square dilation, separably: rows then columns
    grown = F.max_pool2d(inside, (size, 1), stride=1, padding=(width, 0))
    grown = F.max_pool2d(grown, (1, size), stride=1, padding=(0, width))
    return (grown > 0.5) & ~(inside > 0.5)
