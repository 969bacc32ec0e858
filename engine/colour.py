"""sRGB -> CIELAB (D65) in torch, for colour statistics that match what people see.

The conversion is the textbook one: undo the sRGB transfer curve, a linear map to XYZ (sRGB primaries, D65
white), normalise by the white point, then the CIE cube-root curve with its linear toe.
"""

from __future__ import annotations

import torch

# Rows give X, Y, Z from linear R, G, B (IEC 61966-2-1, D65).
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
D65_WHITE = (0.95047, 1.0, 1.08883)  # XYZ of the reference white, Y = 1
_EPSILON = (6 / 29) ** 3  # below this, the CIE curve is linear (avoids the cube root's infinite slope at 0)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] -> linear light in [0, 1] (the sRGB curve: a linear toe, then a 2.4 power)."""
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _cie_curve(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPSILON, t.clamp(min=_EPSILON) ** (1 / 3), t / (3 * (6 / 29) ** 2) + 4 / 29)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] sRGB in [-1, 1] -> [B, 3, H, W] L* in [0, 100], a*, b* roughly in [-128, 127]."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected [B, 3, H, W], got {list(image.shape)}")
    linear = srgb_to_linear(((image.double() + 1) / 2).clamp(0, 1))
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64, device=image.device)
    white = torch.tensor(D65_WHITE, dtype=torch.float64, device=image.device).view(1, 3, 1, 1)
    xyz = torch.einsum("xc,bchw->bxhw", matrix, linear) / white
    fx, fy, fz = _cie_curve(xyz).unbind(dim=1)
    lab = torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)
    return lab.to(image.dtype)
