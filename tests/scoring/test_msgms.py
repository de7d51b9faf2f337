"""GMS / MSGMS (anomaly.scoring) against an independent numpy + scipy.ndimage computation.

Reference: Xue et al. 2014 (GMSD, doi:10.1109/TIP.2013.2293423): Prewitt gradients divided by 3,
GMS = (2 m1 m2 + c) / (m1^2 + m2^2 + c), c = 170 / 255^2; RIAD (Zavrtanik et al. 2021,
doi:10.1016/j.patcog.2020.107706): mean of GMS over 2x2-average-pooled scales, upsampled back.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from anomaly.scoring import gradient_magnitude_similarity_map, msgms_map

SAMPLE = Path(__file__).resolve().parents[2] / "anomaly" / "sample"
C = 170 / 255**2


def _grey(rel: str, size=(48, 64)) -> np.ndarray:
    img = Image.open(SAMPLE / rel).convert("L").resize(size[::-1], Image.BILINEAR)
    return np.asarray(img, np.float64) / 255


def _gms_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    def magnitude(x):
        return np.hypot(ndimage.prewitt(x, axis=0, mode="nearest"), ndimage.prewitt(x, axis=1, mode="nearest")) / 3

    ma, mb = magnitude(a), magnitude(b)
    return (2 * ma * mb + C) / (ma**2 + mb**2 + C)


def _pool2(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    return x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def _upsample(x: np.ndarray, size) -> np.ndarray:
    """Bilinear with pixel centres aligned (half-pixel offsets), edges clamped: np.interp per axis."""
    def along(x, n_out, axis):
        n_in = x.shape[axis]
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        return np.apply_along_axis(lambda v: np.interp(pos, np.arange(n_in), v), axis, x)

    return along(along(x, size[0], 0), size[1], 1)


def _msgms_np(a: np.ndarray, b: np.ndarray, scales: int) -> np.ndarray:
    total = np.zeros_like(a)
    for s in range(scales):
        if s:
            a, b = _pool2(a), _pool2(b)
        total += _upsample(_gms_np(a, b), total.shape)
    return total / scales


def _t(*arrays: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)[:, None].copy())


@pytest.fixture(scope="module")
def pair():
    image = _grey("MT_Free/Imgs/exp4_num_148998.jpg")
    rng = np.random.default_rng(0)
    test = np.clip(image + ndimage.gaussian_filter(rng.normal(0, 0.2, image.shape), 2), 0, 1)
    test[10:20, 30:44] = 0.9  # a bright defect
    return image, test


def test_gms_matches_scipy_prewitt_reference(pair):
    a, b = pair
    got = gradient_magnitude_similarity_map(_t(a), _t(b))
    assert got.shape == (1, 1, *a.shape) and got.dtype == torch.float64
    np.testing.assert_allclose(got[0, 0].numpy(), _gms_np(a, b), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scales", [1, 3, 4])
def test_msgms_matches_reference_pooled_and_upsampled(pair, scales):
    a, b = pair
    got = msgms_map(_t(a, b), _t(b, b), scales=scales)  # batch of two: a pair and an identical pair
    assert got.shape == (2, 1, *a.shape)
    np.testing.assert_allclose(got[0, 0].numpy(), _msgms_np(a, b, scales), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1, 0].numpy(), 1.0, rtol=0, atol=1e-12)


def test_msgms_float32_and_colour_average_channels(pair):
    a, b = pair
    colour_a = np.stack([a, a, a]).astype(np.float32)
    colour_b = np.stack([b, b, b]).astype(np.float32)
    got = msgms_map(torch.from_numpy(colour_a)[None], torch.from_numpy(colour_b)[None])
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got[0, 0].numpy(), _msgms_np(a, b, 4), rtol=0, atol=2e-5)


def test_hand_computed_step_edge():
    # A vertical step 0 -> 1 in `a`; `b` flat. On both columns beside the step, the Prewitt
    # magnitude of `a` is (1 + 1 + 1) / 3 = 1 (three rows of x[j+1] - x[j-1] = 1), of `b` 0:
    # GMS = c / (1 + c). Away from the step both gradients vanish and GMS = c / c = 1.
    a = np.zeros((5, 6))
    a[:, 3:] = 1.0
    b = np.zeros((5, 6))
    got = gradient_magnitude_similarity_map(_t(a), _t(b))[0, 0].numpy()
    np.testing.assert_allclose(got[:, 2:4], C / (1 + C), rtol=1e-12)
    np.testing.assert_allclose(got[:, [0, 5]], 1.0, rtol=1e-12)
    assert (got <= 1).all() and (got > 0).all()


def test_defect_lowers_similarity_where_it_is(pair):
    a, _ = pair
    b = a.copy()
    b[20:30, 20:30] = 1.0
    sim = msgms_map(_t(a), _t(b))[0, 0].numpy()
    assert sim[20:30, 20:30].mean() < 0.8 < sim[:, 45:].mean()


def test_msgms_loss_has_finite_gradients_on_flat_images_under_bfloat16_autocast(pair):
    """Flat regions (here: a constant reconstruction) have gradient magnitude exactly 0, where sqrt's
    derivative is infinite; bfloat16 quantisation makes such regions common in mixed-precision training."""
    a, _ = pair
    true = torch.from_numpy(a).float()[None, None]
    test = torch.full_like(true, 0.5, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sim = msgms_map(true, test.to(torch.bfloat16))
    assert sim.dtype == torch.float32
    (1 - sim.mean()).backward()
    assert torch.isfinite(test.grad).all() and test.grad.abs().sum() > 0
    # the same value as without autocast, in float32
    torch.testing.assert_close(sim, msgms_map(true, test.detach().to(torch.bfloat16).float()))


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="same shape"):
        gradient_magnitude_similarity_map(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="too small for 4 scales"):
        msgms_map(torch.zeros(1, 1, 7, 64), torch.zeros(1, 1, 7, 64), scales=4)
    with pytest.raises(ValueError, match="positive integer"):
        msgms_map(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), scales=0)
    with pytest.raises(ValueError, match="4-D"):
        msgms_map(torch.zeros(8, 8), torch.zeros(8, 8))
