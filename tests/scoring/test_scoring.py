"""anomaly.scoring against scipy.ndimage / scikit-image references and hand-computed cases."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage.metrics import structural_similarity

from anomaly.scoring import (
    RESIDUALS,
    gaussian_blur,
    gaussian_kernel1d,
    image_scores,
    l2_map,
    residual_map,
    resize_map,
    ssim_loss,
    ssim_map,
    ssim_score,
)

SAMPLE = Path(__file__).resolve().parents[2] / "anomaly" / "sample"


def _load(rel: str) -> np.ndarray:
    return np.asarray(Image.open(SAMPLE / rel).convert("L"), np.float32) / 255


def _t(a: np.ndarray) -> torch.Tensor:
    """(H, W) -> (1, 1, H, W) or (C, H, W) -> (1, C, H, W) float32 tensor."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return t[None, None] if t.ndim == 2 else t[None]


def _skimage_ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5, channel_axis=None):
    """Reference: scikit-image in float64 (mean, full map)."""
    return structural_similarity(
        a.astype(np.float64), b.astype(np.float64), full=True, gaussian_weights=True, sigma=sigma,
        use_sample_covariance=False, data_range=1, channel_axis=channel_axis,
    )


@pytest.fixture(scope="module")
def real_pair() -> tuple[np.ndarray, np.ndarray]:
    a = _load("MT_Break/Imgs/exp6_num_356817.jpg")[:160, :200]
    b = _load("MT_Free/Imgs/exp4_num_148998.jpg")[:160, :200]
    return a, b


def test_kernel_matches_scipy_taps():
    k = gaussian_kernel1d(1.5)
    assert k.shape == (11,) and k.dtype == torch.float32
    impulse = np.zeros(31)
    impulse[15] = 1
    ref = ndimage.gaussian_filter1d(impulse, 1.5, truncate=3.5, mode="constant")[10:21]
    np.testing.assert_allclose(k.numpy(), ref, atol=1e-7)


@pytest.mark.parametrize(
    ("shape", "sigma"), [((20, 31), 1.5), ((3, 2), 2.0), ((5, 5), 4.0), ((1, 7), 1.0)]
)
def test_gaussian_blur_matches_scipy_reflect(shape, sigma):
    # (3, 2) and (5, 5) are smaller than the kernel radius (7 and 14): reflection repeats
    x = np.random.default_rng(0).random((2, 3, *shape)).astype(np.float32)
    out = gaussian_blur(torch.from_numpy(x), sigma).numpy()
    assert out.shape == x.shape
    for b in range(2):
        for c in range(3):
            ref = ndimage.gaussian_filter(
                x[b, c].astype(np.float64), sigma, mode="reflect", truncate=3.5
            )
            np.testing.assert_allclose(out[b, c], ref, atol=1e-5)


@pytest.mark.parametrize("kind", ["blurred", "other"])
def test_ssim_matches_skimage_on_real_images(real_pair, kind):
    a, other = real_pair
    rng = np.random.default_rng(1)
    noisy = np.clip(ndimage.gaussian_filter(a, 1.0) + rng.normal(0, 0.03, a.shape), 0, 1)
    b = noisy if kind == "blurred" else other
    mean_ref, map_ref = _skimage_ssim(a, b)
    s = ssim_map(_t(a), _t(b))
    assert s.shape == (1, 1, *a.shape) and s.dtype == torch.float32
    np.testing.assert_allclose(s[0, 0].numpy(), map_ref, atol=1e-4)  # borders included
    assert abs(ssim_score(_t(a), _t(b)).item() - mean_ref) < 1e-4


@pytest.mark.parametrize("sigma", [1.5, 1.0])
def test_ssim_matches_skimage_on_random_batch(sigma):
    rng = np.random.default_rng(2)
    x = rng.random((3, 1, 24, 37)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1).astype(np.float32)
    maps = ssim_map(torch.from_numpy(x), torch.from_numpy(y), sigma=sigma)
    scores = ssim_score(torch.from_numpy(x), torch.from_numpy(y), sigma=sigma)
    assert maps.shape == (3, 1, 24, 37) and scores.shape == (3,)
    for i in range(3):
        mean_ref, map_ref = _skimage_ssim(x[i, 0], y[i, 0], sigma=sigma)
        np.testing.assert_allclose(maps[i, 0].numpy(), map_ref, atol=1e-4)
        assert abs(scores[i].item() - mean_ref) < 1e-4


def test_ssim_three_channels_matches_skimage_channel_axis(real_pair):
    a, b = real_pair
    x = np.stack([a[:60, :80], a[60:120, :80], a[:60, 80:160]])  # (3, 60, 80)
    y = np.stack([b[:60, :80], x[1] * 0.8 + 0.1, b[60:120, 80:160]])
    mean_ref, map_ref = _skimage_ssim(x, y, channel_axis=0)
    s = ssim_map(_t(x), _t(y))[0, 0].numpy()
    np.testing.assert_allclose(s, map_ref.mean(axis=0), atol=1e-4)  # channel-averaged map
    assert abs(ssim_score(_t(x), _t(y)).item() - mean_ref) < 1e-4


def test_identical_images_give_one(real_pair):
    a = _t(real_pair[0])
    assert torch.allclose(ssim_map(a, a), torch.ones_like(a), atol=1e-6)
    assert abs(ssim_score(a, a).item() - 1) < 1e-6
    assert abs(ssim_loss(a, a).item()) < 1e-6


def test_ssim_loss_gradient_flows():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.random((2, 1, 16, 16)).astype(np.float32))
    y = torch.from_numpy(rng.random((2, 1, 16, 16)).astype(np.float32)).requires_grad_()
    loss = ssim_loss(x, y)
    loss.backward()
    assert loss.ndim == 0 and 0 < loss.item() <= 2
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 17), "same shape"),
        (torch.rand(1, 16, 16), torch.rand(1, 16, 16), "4-D"),
        (torch.rand(1, 1, 10, 40), torch.rand(1, 1, 10, 40), "11x11"),
    ],
)
def test_ssim_rejects_bad_shapes(a, b, match):
    with pytest.raises(ValueError, match=match):
        ssim_map(a, b)
    with pytest.raises(ValueError, match=match):
        ssim_score(a, b)


def test_ssim_rejects_integer_images():
    x = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    with pytest.raises(TypeError, match="floating"):
        ssim_map(x, x)


def test_residual_kinds_on_constant_images():
    # constant images: variances vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = 1e-4
    a = torch.full((1, 2, 11, 11), 0.5)
    b = torch.stack([torch.full((11, 11), 0.3), torch.full((11, 11), 0.9)])[None]
    l2 = (0.2**2 + 0.4**2) / 2
    ssim = ((2 * 0.5 * 0.3 + 1e-4) / (0.34 + 1e-4) + (2 * 0.5 * 0.9 + 1e-4) / (1.06 + 1e-4)) / 2
    dssim = (1 - ssim) / 2
    expected = {"l2": l2, "ssim": dssim, "ssim+l2": (l2 + dssim) / 2}
    assert set(expected) == set(RESIDUALS)
    for kind, value in expected.items():
        r = residual_map(a, b, kind)
        assert r.shape == (1, 1, 11, 11)
        assert torch.allclose(r, torch.full_like(r, value), atol=2e-4), kind  # residual maps use float32 SSIM statistics
    assert torch.allclose(l2_map(a, b), torch.full((1, 1, 11, 11), l2))


def test_residual_unknown_kind_lists_valid_ones():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="l2, ssim, ssim\\+l2"):
        residual_map(x, x, "l1")


def test_ssim_residual_peaks_on_a_synthetic_defect(real_pair):
    # behavioural: a dark blob pasted into the image, the original as "reconstruction"
    a = real_pair[0].copy()
    defect = a.copy()
    defect[70:80, 120:130] = 0.05
    r = residual_map(_t(defect), _t(a), "ssim")[0, 0]
    row, col = divmod(int(r.argmax()), r.shape[1])
    assert 65 <= row < 85 and 115 <= col < 135
    assert float(r.min()) >= 0 and float(r.max()) <= 1


def test_image_scores_hand_computed():
    maps = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    maps[1] = 0
    assert image_scores(maps, "max").tolist() == [16, 0]
    assert image_scores(maps, "topk", 0.25).tolist() == [14.5, 0]  # mean of 13..16
    assert image_scores(maps, "topk", 0.1).tolist() == [15.5, 0]  # round(1.6) = 2 pixels
    assert image_scores(maps, "topk", 1e-6).tolist() == [16, 0]  # at least one pixel
    with pytest.raises(ValueError, match="'max' or 'topk'"):
        image_scores(maps, "mean")
    with pytest.raises(ValueError, match="topk"):
        image_scores(maps, "topk", 0.0)


@pytest.mark.parametrize("size", [(13, 21), (3, 5), (8, 20)])
def test_resize_map_shape_and_constant(size):
    m = torch.full((2, 1, 8, 8), 0.7)
    out = resize_map(m, size)
    assert out.shape == (2, 1, *size)
    assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)


def test_resize_map_bilinear_values():
    # align_corners=False: upsampling [0, 1] by 2 gives [0, 0.25, 0.75, 1]
    m = torch.tensor([[0.0, 1.0]]).reshape(1, 1, 1, 2)
    assert torch.allclose(resize_map(m, (1, 4))[0, 0, 0], torch.tensor([0, 0.25, 0.75, 1]))
    with pytest.raises(ValueError, match="positive"):
        resize_map(m, (0, 4))
