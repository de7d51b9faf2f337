"""Thresholds and score normalisation from normal images alone.

The image threshold is the (1 - fpr) quantile of normal validation scores when there are enough
of them (at least 1 / fpr images); with fewer, the empirical quantile would just be the maximum,
so the threshold is the larger of the maximum and mean + z(1 - fpr) * std (a Gaussian tail).
Normalised scores are a logistic of (score - threshold) / std: in (0, 1), 0.5 at the threshold.
A `Calibration` holds only finite values in their ranges (checked when built, `from_dict` included).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from anomaly.checks import invalid, number, one_of

METHODS = ("quantile", "gaussian-tail")


@dataclass(frozen=True)
class Calibration:
    image_threshold: float
    pixel_threshold: float
    score_mean: float  # statistics of normal validation image scores
    score_std: float
    score_min: float
    score_max: float
    score_p50: float
    score_p99: float
    map_low: float  # heatmap colour scale: median normal pixel ...
    map_high: float  # ... to this value, which puts the map-maximum threshold (at `target_fpr`) in the middle
    target_fpr: float
    pixel_fpr: float
    method: str  # "quantile" or "gaussian-tail"
    n_images: int
    f1_threshold: float | None = None  # F1-optimal threshold when labelled anomalies were seen (reported only)

    def __post_init__(self) -> None:
        """ValueError naming the first field outside its rule: every number finite, score_std >= 0,
        map_high >= map_low, the FPRs in (0, 1), n_images an integer >= 1, method a known rule."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "method":
                one_of("method", value, METHODS)
            elif field.name == "n_images":
                number("n_images", value, "[1, inf)", integer=True)
            elif field.name.endswith("fpr"):
                number(field.name, value, "(0, 1)")
            elif not (field.name == "f1_threshold" and value is None):
                number(field.name, value, "[0, inf)" if field.name == "score_std" else "")
        if self.map_high < self.map_low:
            raise invalid("map_high", f"at least map_low = {self.map_low}", self.map_high)

    def normalise(self, scores: ArrayLike, threshold: float | None = None) -> np.ndarray:
        """Raw scores -> float64 in (0, 1), 0.5 exactly at `threshold` (default: the calibrated one)."""
        threshold = self.image_threshold if threshold is None else threshold
        scale = self.score_std if self.score_std > 0 else max(abs(threshold), 1e-12) * 0.01
        z = (np.asarray(scores, dtype=np.float64) - threshold) / scale
        return 1.0 / (1.0 + np.exp(-np.clip(z, -36, 36)))  # past |z| 37 float64 rounds to exactly 0 or 1

    def heatmap_scale(self, anomaly_map: np.ndarray) -> np.ndarray:
        """A map (any shape) -> float32 in [0, 1] on the dataset-level colour scale (never per image)."""
        span = self.map_high - self.map_low
        return np.clip((anomaly_map - self.map_low) / (span if span > 0 else 1.0), 0, 1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> Calibration:
        """From calibration.json: every field present (f1_threshold may be null), no other."""
        names = [field.name for field in dataclasses.fields(cls)]
        if not isinstance(values, dict):
            raise invalid("the calibration", "a JSON object", values)
        if missing := [name for name in names if name not in values]:
            raise ValueError(f"missing field(s) {', '.join(missing)}; a calibration has {', '.join(names)}")
        if extra := sorted(set(values) - set(names)):
            raise ValueError(f"unknown field(s) {', '.join(extra)}; a calibration has {', '.join(names)}")
        return cls(**values)


def threshold_at_fpr(scores: ArrayLike, fpr: float) -> tuple[float, str]:
    """Threshold with at most `fpr` of `scores` (normal images) at or above it, and the rule used."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("cannot calibrate a threshold from zero normal images; give at least one")
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    if scores.size * fpr >= 1:
        # strictly above the k-th largest score, so that only k of n = fpr * n normals reach it
        k = int(math.floor(scores.size * fpr))
        ordered = np.sort(scores)
        return float(np.nextafter(ordered[-k - 1], np.inf) if k else ordered[-1]), "quantile"
    z = NormalDist().inv_cdf(1 - fpr)
    warnings.warn(
        f"only {scores.size} normal images for a target FPR of {fpr}: at least {math.ceil(1 / fpr)} are needed "
        "for an empirical quantile, so the threshold is max(max score, mean + z * std)", stacklevel=2)
    return float(max(scores.max(), scores.mean() + z * scores.std())), "gaussian-tail"


def calibrate(normal_scores: ArrayLike, normal_maps: np.ndarray, *, fpr: float = 0.01,
              pixel_fpr: float = 0.001, labels: ArrayLike | None = None,
              scores: ArrayLike | None = None) -> Calibration:
    """Calibrate from normal validation images.

    normal_scores: (N,) image scores; normal_maps: (N, H, W) or (N, 1, H, W) float maps of the same
    images at model resolution. `labels`/`scores` (optional, labelled data with anomalies) add the
    F1-optimal threshold, which is reported but never used as the default.
    """
    normal_scores = np.asarray(normal_scores, dtype=np.float64)
    image_threshold, method = threshold_at_fpr(normal_scores, fpr)
    normal_maps = np.asarray(normal_maps, dtype=np.float32)
    if len(normal_maps) != normal_scores.size or normal_maps.size == 0:
        raise ValueError(f"need one non-empty map per normal score; got {normal_scores.size} scores and maps of "
                         f"shape {normal_maps.shape}")
    pixels = normal_maps.ravel()
    pixel_threshold = float(np.quantile(pixels, 1 - pixel_fpr))
    map_low = float(np.median(pixels))
    # the colour scale is in map units: the threshold of per-image map maxima, not the image threshold,
    # which may include a model's extra score term (ganomaly's latent error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the image threshold above already warned about few images
        map_threshold, _ = threshold_at_fpr(normal_maps.reshape(len(normal_maps), -1).max(axis=1), fpr)
    f1_threshold = None
    if labels is not None and scores is not None and len(set(np.asarray(labels).tolist())) == 2:
        from anomaly.metrics import f1_optimal_threshold

        f1_threshold = float(f1_optimal_threshold(labels, scores)[0])
    return Calibration(
        image_threshold=image_threshold, pixel_threshold=pixel_threshold,
        score_mean=float(normal_scores.mean()), score_std=float(normal_scores.std()),
        score_min=float(normal_scores.min()), score_max=float(normal_scores.max()),
        score_p50=float(np.quantile(normal_scores, 0.5)), score_p99=float(np.quantile(normal_scores, 0.99)),
        map_low=map_low, map_high=map_low + 2 * max(map_threshold - map_low, 1e-12),
        target_fpr=fpr, pixel_fpr=pixel_fpr, method=method, n_images=int(normal_scores.size),
        f1_threshold=f1_threshold,
    )
