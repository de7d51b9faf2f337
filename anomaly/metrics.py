"""Detection and segmentation metrics: image AUROC, pixel AUROC, AUPRO, F1.

Numpy in, Python floats out. Pixel metrics take lists of per-image ``(H, W)`` arrays whose sizes
may differ (heatmaps at each image's own resolution). They are exact (every distinct threshold)
yet sort only the normal pixels, in one float array, and look the anomalous pixels up in it
(``np.searchsorted``): memory is about one score per pixel, time is one sort.

References
----------
Fawcett (2006). An introduction to ROC analysis. Pattern Recognition Letters 27, 861-874.
doi:10.1016/j.patrec.2005.10.010
Bergmann, Batzner, Fauser, Sattlegger, Steger (2021). The MVTec anomaly detection dataset.
International Journal of Computer Vision 129, 1038-1059. doi:10.1007/s11263-020-01400-4
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage
from scipy.stats import rankdata

__all__ = ["aupro", "f1_at_threshold", "f1_optimal_threshold", "image_auroc", "pixel_auroc"]

_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity for defect regions


def _labels_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} and {s.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (normal) or 1 (anomalous), got {np.unique(y)[:5]}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y.astype(bool), s


def image_auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of image scores, in [0, 1] (0.5 = chance).

    ``labels``: ``(N,)`` of {0, 1} (1 = anomalous); ``scores``: ``(N,)`` float, higher = more
    anomalous. Computed as the Mann-Whitney U statistic with mid-ranks for ties (Fawcett 2006,
    doi:10.1016/j.patrec.2005.10.010). Raises ``ValueError`` unless both classes are present.
    """
    y, s = _labels_scores(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"AUROC needs both normal and anomalous images, got {n_pos} anomalous and "
            f"{n_neg} normal"
        )
    rank_sum = rankdata(s)[y].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _pixels(masks: Sequence[np.ndarray], maps: Sequence[np.ndarray], regions: bool):
    """Split all pixels into sorted normal scores and anomalous scores (with region weights).

    Returns ``(neg, pos, weight, n_regions)``: ``neg`` sorted normal scores, ``pos`` sorted
    anomalous scores, ``weight`` per anomalous pixel ``1 / size of its 8-connected region``
    (ones unless ``regions``), ``n_regions`` the number of regions over all images.
    """
    if len(masks) != len(maps):
        raise ValueError(f"got {len(masks)} masks but {len(maps)} maps; pass one mask per map")
    if len(maps) == 0:
        raise ValueError("no images: masks and maps are empty")
    masks = [np.asarray(m).astype(bool, copy=False) for m in masks]
    maps = [np.asarray(a) for a in maps]
    for i, (m, a) in enumerate(zip(masks, maps)):
        if m.ndim != 2 or m.shape != a.shape:
            raise ValueError(
                f"image {i}: mask {m.shape} and map {a.shape} must be 2-D (H, W) of the same size; "
                "resize the map to the image first"
            )
    dtype = np.result_type(np.float32, *(a.dtype for a in maps))
    n_pos = sum(int(m.sum()) for m in masks)
    neg = np.empty(sum(m.size for m in masks) - n_pos, dtype)
    pos, weight = np.empty(n_pos, dtype), np.ones(n_pos)
    n_regions, i_neg, i_pos = 0, 0, 0
    for m, a in zip(masks, maps):
        k = int(m.sum())
        neg[i_neg : i_neg + m.size - k] = a[~m]
        pos[i_pos : i_pos + k] = a[m]
        if regions and k:
            lab, n = ndimage.label(m, structure=_EIGHT)
            weight[i_pos : i_pos + k] = 1.0 / np.bincount(lab.ravel())[lab[m]]
            n_regions += n
        i_neg, i_pos = i_neg + m.size - k, i_pos + k
    if np.isnan(neg).any() or np.isnan(pos).any():
        raise ValueError("anomaly maps contain NaN")
    neg.sort()
    order = np.argsort(pos)  # sorted look-ups into neg are several times faster (cache)
    return neg, pos[order], weight[order], n_regions


def _fpr_interval(neg: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR just above and at each anomalous score: ``(#neg > s, #neg >= s) / #neg``."""
    n = neg.size
    above = (n - np.searchsorted(neg, pos, side="right")) / n
    at = (n - np.searchsorted(neg, pos, side="left")) / n
    return above, at


def pixel_auroc(masks: Sequence[np.ndarray], maps: Sequence[np.ndarray]) -> float:
    """ROC AUC over all pixels of all images pooled, in [0, 1]; exact, ties counted half.

    ``masks``: per-image ``(H, W)`` bool (nonzero = defect); ``maps``: per-image ``(H, W)`` float
    anomaly maps of the same sizes (sizes may differ between images). Raises ``ValueError`` when
    there is no defect pixel or no normal pixel.
    """
    neg, pos, _, _ = _pixels(masks, maps, regions=False)
    if pos.size == 0 or neg.size == 0:
        raise ValueError(
            f"pixel AUROC needs defect and normal pixels, got {pos.size} and {neg.size}"
        )
    above, at = _fpr_interval(neg, pos)
    # each defect pixel beats the normal pixels below it, half of those tied with it
    return float(np.sum(1.0 - (above + at) / 2) / pos.size)


def aupro(masks: Sequence[np.ndarray], maps: Sequence[np.ndarray], max_fpr: float = 0.3) -> float:
    """Normalised area under the per-region-overlap curve up to ``max_fpr``, in [0, 1].

    Bergmann et al. (2021), doi:10.1007/s11263-020-01400-4. For each threshold ``t`` (every
    distinct score), PRO(t) is the mean over all 8-connected defect regions of all images of the
    fraction of the region's pixels with score >= t, and FPR(t) the fraction of normal pixels
    (outside every mask, normal images included) with score >= t. The curve runs through (0, 0)
    and every (FPR(t), PRO(t)), is integrated by the trapezoid rule from 0 to ``max_fpr``
    (linearly interpolated at ``max_fpr``) and divided by ``max_fpr``; as the MVTec evaluation
    code. ``masks``, ``maps``: as :func:`pixel_auroc`; ``0 < max_fpr <= 1``.

    Computed exactly without a threshold loop: PRO is a sum over defect pixels of ``weight / R``
    (``weight = 1 / region size``, ``R`` regions), so the area is a sum of each pixel's share: a
    pixel with score ``s`` counts from FPR ``b = FPR(s)`` on, and ramps in linearly over the
    segment ``[a, b]`` (``a`` = FPR just above ``s``) it shares with tied normal pixels.
    """
    if not 0 < max_fpr <= 1:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")
    neg, pos, weight, n_regions = _pixels(masks, maps, regions=True)
    if n_regions == 0 or neg.size == 0:
        raise ValueError(
            f"AUPRO needs defect regions and normal pixels, got {n_regions} regions and "
            f"{neg.size} normal pixels"
        )
    a, b = _fpr_interval(neg, pos)
    u = np.clip(max_fpr, a, b)  # how far into its ramp [a, b] the integral reaches
    ramp = (u - a) / np.maximum(b - a, np.finfo(np.float64).tiny)  # in [0, 1]
    share = (u - a) * ramp / 2 + np.maximum(max_fpr - b, 0.0)
    return float(np.dot(weight, share) / n_regions / max_fpr)


def f1_at_threshold(labels: ArrayLike, scores: ArrayLike, threshold: float) -> float:
    """F1 of the anomalous class when predicting anomalous for ``score >= threshold``, in [0, 1].

    ``labels``: ``(N,)`` of {0, 1}; ``scores``: ``(N,)`` float. Returns 0.0 when nothing is
    predicted anomalous or there are no anomalous labels (F1 = 2 TP / (2 TP + FP + FN), with 0/0
    taken as 0).
    """
    y, s = _labels_scores(labels, scores)
    pred = s >= threshold
    tp = int(np.sum(pred & y))
    denom = int(pred.sum()) + int(y.sum())  # 2 TP + FP + FN
    return 2 * tp / denom if tp else 0.0


def f1_optimal_threshold(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """Threshold among the observed scores maximising :func:`f1_at_threshold`; ``(threshold, f1)``.

    ``labels``: ``(N,)`` of {0, 1}, at least one 1; ``scores``: ``(N,)`` float. On ties the highest
    such threshold (fewest images flagged) is returned. Needs labelled anomalies: for a threshold
    from normal images alone use ``anomaly.calibration``.
    """
    y, s = _labels_scores(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("F1-optimal threshold needs at least one anomalous label, got none")
    order = np.argsort(-s, kind="stable")
    s_desc, tp = s[order], np.cumsum(y[order])
    last = np.append(s_desc[1:] != s_desc[:-1], True)  # last index of each run of equal scores
    thresholds, tp = s_desc[last], tp[last]
    n_pred = np.flatnonzero(last) + 1
    f1 = 2 * tp / (n_pred + n_pos)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])
