"""anomaly.metrics against scikit-learn, a brute-force PRO curve and hand-computed cases."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label as sk_label
from sklearn.metrics import roc_auc_score

from anomaly.metrics import aupro, f1_at_threshold, f1_optimal_threshold, image_auroc, pixel_auroc

SIZES = [(7, 9), (12, 5), (10, 10), (6, 6)]


def _random_case(seed: int, decimals: int | None):
    """Images of different sizes with several blob-shaped defect regions, one image defect-free."""
    rng = np.random.default_rng(seed)
    masks, maps = [], []
    for i, shape in enumerate(SIZES):
        blobs = ndimage.gaussian_filter(rng.random(shape), 1.0) > 0.55
        mask = blobs if i != len(SIZES) - 1 else np.zeros(shape, bool)
        score = 0.6 * mask + rng.random(shape)
        masks.append(mask)
        maps.append(np.round(score, decimals) if decimals is not None else score.astype(np.float32))
    return masks, maps


def _brute_force_aupro(masks, maps, max_fpr):
    """Loop over every distinct score; FPR and per-region overlap counted directly."""
    regions = []  # (image index, boolean region) with skimage's 8-connectivity labelling
    for i, m in enumerate(masks):
        lab = sk_label(m, connectivity=2)
        regions += [(i, lab == k) for k in range(1, lab.max() + 1)]
    normal = np.concatenate([a[~m] for m, a in zip(masks, maps)])
    xs, ys = [0.0], [0.0]
    for t in np.unique(np.concatenate([a.ravel() for a in maps]))[::-1]:
        xs.append(np.mean(normal >= t))
        ys.append(np.mean([np.mean(maps[i][r] >= t) for i, r in regions]))
    area = 0.0
    for k in range(1, len(xs)):
        x0, x1, y0, y1 = xs[k - 1], xs[k], ys[k - 1], ys[k]
        if x1 > max_fpr:  # interpolate at max_fpr and stop
            y = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            area += (max_fpr - x0) * (y0 + y) / 2
            break
        area += (x1 - x0) * (y0 + y1) / 2
    return area / max_fpr


@pytest.mark.parametrize("seed", range(4))
def test_image_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.3 * labels, 1)  # few distinct values: many ties
    assert image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_image_auroc_hand_cases():
    assert image_auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert image_auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert image_auroc([0, 1], [0.5, 0.5]) == 0.5
    with pytest.raises(ValueError, match="both"):
        image_auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        image_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="length"):
        image_auroc([0, 1], [0.1])


@pytest.mark.parametrize(("seed", "decimals"), [(0, None), (1, 1), (2, 2)])
def test_pixel_auroc_matches_sklearn_on_pooled_pixels(seed, decimals):
    masks, maps = _random_case(seed, decimals)
    ref = roc_auc_score(
        np.concatenate([m.ravel() for m in masks]), np.concatenate([a.ravel() for a in maps])
    )
    assert pixel_auroc(masks, maps) == pytest.approx(ref, abs=1e-9)


def test_pixel_auroc_errors():
    with pytest.raises(ValueError, match="defect and normal"):
        pixel_auroc([np.zeros((4, 4), bool)], [np.random.rand(4, 4)])
    with pytest.raises(ValueError, match="same size"):
        pixel_auroc([np.zeros((4, 4), bool)], [np.random.rand(4, 5)])
    with pytest.raises(ValueError, match="one mask per map"):
        pixel_auroc([np.zeros((4, 4), bool)], [])


@pytest.mark.parametrize(("seed", "decimals"), [(0, None), (1, 1), (2, 2), (3, None), (4, 1)])
@pytest.mark.parametrize("max_fpr", [0.3, 0.05, 1.0])
def test_aupro_matches_brute_force(seed, decimals, max_fpr):
    masks, maps = _random_case(seed, decimals)
    n_regions = sum(sk_label(m, connectivity=2).max() for m in masks)
    assert n_regions >= 3  # several regions, over images of different sizes
    expected = _brute_force_aupro(masks, maps, max_fpr)
    assert aupro(masks, maps, max_fpr=max_fpr) == pytest.approx(expected, abs=1e-3)


def test_aupro_known_answers():
    masks, maps = _random_case(0, None)
    assert aupro(masks, [m.astype(float) for m in masks]) == pytest.approx(1.0)  # perfect map
    assert aupro(masks, [1.0 - m for m in masks]) == pytest.approx(0.0)  # inverted map
    # one threshold: the curve is the diagonal (0, 0)-(1, 1), area max_fpr^2 / 2
    assert aupro(masks, [np.zeros(m.shape) for m in masks], max_fpr=0.3) == pytest.approx(0.15)


def test_aupro_averages_regions_not_pixels():
    # region A: 1 pixel found (score 1); region B: 3x3 missed (score 0); normal pixels 0.5.
    # curve (0,0) (0,0.5) (1,0.5) (1,1): AUPRO 0.5 whatever max_fpr (pixel-weighted: 0.1)
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = True
    mask[3:6, 3:6] = True
    score = np.where(mask, 0.0, 0.5)
    score[0, 0] = 1.0
    assert aupro([mask], [score], max_fpr=0.3) == pytest.approx(0.5)
    assert aupro([mask], [score], max_fpr=1.0) == pytest.approx(0.5)


def test_aupro_uses_eight_connectivity():
    # (0,0) touches (1,1) diagonally: one region of 3 pixels, 1 found -> 1/3 (4-connected: 1/2)
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[1, 1] = mask[1, 2] = True
    score = np.where(mask, 0.0, 0.5)
    score[0, 0] = 1.0
    assert aupro([mask], [score]) == pytest.approx(1 / 3)


def test_aupro_errors():
    with pytest.raises(ValueError, match="regions"):
        aupro([np.zeros((4, 4), bool)], [np.random.rand(4, 4)])
    with pytest.raises(ValueError, match="normal pixels"):
        aupro([np.ones((4, 4), bool)], [np.random.rand(4, 4)])
    with pytest.raises(ValueError, match="max_fpr"):
        aupro([np.eye(4, dtype=bool)], [np.random.rand(4, 4)], max_fpr=0)
    with pytest.raises(ValueError, match="NaN"):
        aupro([np.eye(4, dtype=bool)], [np.full((4, 4), np.nan)])


LABELS = [0, 0, 1, 1, 1, 0]
SCORES = [0.1, 0.4, 0.35, 0.8, 0.9, 0.05]


def test_f1_at_threshold_hand_computed():
    assert f1_at_threshold(LABELS, SCORES, 0.4) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # TP 2
    assert f1_at_threshold(LABELS, SCORES, 0.35) == pytest.approx(6 / 7)  # TP 3, FP 1, FN 0
    assert f1_at_threshold(LABELS, SCORES, 0.95) == 0.0  # nothing predicted anomalous
    assert f1_at_threshold([0, 0], [0.1, 0.2], 0.0) == 0.0  # no anomalies at all


def test_f1_optimal_threshold_hand_computed():
    # thresholds 0.9, 0.8, 0.4, 0.35, 0.1, 0.05 give F1 1/2, 4/5, 2/3, 6/7, 3/4, 2/3
    threshold, f1 = f1_optimal_threshold(LABELS, SCORES)
    assert threshold == 0.35 and f1 == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="anomalous"):
        f1_optimal_threshold([0, 0], [0.1, 0.2])


@pytest.mark.parametrize("seed", range(3))
def test_f1_optimal_threshold_matches_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60) + 0.4 * labels, 1)  # ties
    f1s = {t: f1_at_threshold(labels, scores, t) for t in np.unique(scores)}
    best = max(f1s.values())
    threshold, f1 = f1_optimal_threshold(labels, scores)
    assert f1 == pytest.approx(best)
    assert threshold == max(t for t, v in f1s.items() if v == best)
