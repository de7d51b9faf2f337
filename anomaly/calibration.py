"""Thresholds and score normalisation from normal images alone.

The image threshold is a split-conformal bound (Vovk et al. 2005, doi:10.1007/b106715; Angelopoulos &
Bates 2023, doi:10.1561/2200000101): with n held-out normal scores and a target false-alarm rate alpha,
it lies just above the k-th smallest score, k = ceil((n + 1) (1 - alpha)). A new normal image
exchangeable with the held-out ones then scores at or above it with probability

    (n + 1 - k) / (n + 1)  <=  alpha        (exactly, for continuous scores; at most, with ties)

which is also > alpha - 1 / (n + 1): the guarantee is marginal over the held-out draw, not per batch.
With fewer than ceil(1 / alpha) - 1 normals k would exceed n: the threshold is then just above the
highest score and the guarantee is only 1 / (n + 1), said by a warning and recorded (`fpr_bound`).
Normalised scores are a logistic of (score - threshold) / std: in (0, 1), 0.5 at the threshold.
A `Calibration` holds only finite values in their ranges (checked when built, `from_dict` included).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike

from anomaly.checks import invalid, number, one_of, shown

# "conformal" is the rule `calibrate` applies; bundles calibrated by the empirical-quantile or
# Gaussian-tail rules load too, without a recorded guarantee
METHODS = ("conformal", "quantile", "gaussian-tail")
OPTIONAL = ("f1_threshold", "conformal_rank", "fpr_bound")  # may be null or absent in calibration.json
TIE_TOLERANCE = 1e-9  # on (n + 1) * alpha, so that e.g. 100 * 0.01 counts as 1


class ConformalThreshold(NamedTuple):
    threshold: float  # the smallest float above the rank-th smallest score: `score >= threshold` flags
    rank: int  # k, in [1, n]
    fpr_bound: float  # (n + 1 - k) / (n + 1): the false-alarm probability guaranteed for a new normal


def normals_needed(fpr: float) -> int:
    """The fewest held-out normals for which the conformal bound reaches `fpr`: ceil(1 / fpr) - 1."""
    return math.ceil((1 - TIE_TOLERANCE) / fpr) - 1


def conformal_threshold(scores: ArrayLike, fpr: float, *, name: str = "normal images") -> ConformalThreshold:
    """The split-conformal threshold of `scores` (n normal images, held out from training) for a target
    false-alarm rate `fpr` (module docstring). Warns when n < `normals_needed(fpr)`."""
    scores = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    n = scores.size
    if n == 0:
        raise ValueError(f"cannot calibrate a threshold from zero {name}; give at least one")
    if not np.isfinite(scores).all():
        raise ValueError(f"the scores of the {name} must be finite; {int((~np.isfinite(scores)).sum())} are not")
    if not 0 < fpr < 1:
        raise ValueError(f"the target false-alarm rate must be in (0, 1), got {fpr}")
    k = n + 1 - math.floor((n + 1) * fpr + TIE_TOLERANCE)
    if k > n:
        k = n
        warnings.warn(
            f"{n} {name} cannot guarantee a false-alarm rate of {fpr}: the threshold is just above the highest of "
            f"their scores, which guarantees only {1 / (n + 1):.3g} (1 / (n + 1)); {normals_needed(fpr)} normals "
            f"reach {fpr} (more normal images, or a larger --val-fraction)", stacklevel=2)
    return ConformalThreshold(float(np.nextafter(scores[k - 1], np.inf)), k, (n + 1 - k) / (n + 1))


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
    method: str  # "conformal", or "quantile" / "gaussian-tail" in bundles calibrated by those rules
    n_images: int  # n, the held-out normal images calibrated on
    f1_threshold: float | None = None  # F1-optimal threshold when labelled anomalies were seen (reported only)
    conformal_rank: int | None = None  # k: the threshold lies just above the k-th smallest of the n scores
    fpr_bound: float | None = None  # (n + 1 - k) / (n + 1): guaranteed false-alarm rate (None: no guarantee)

    def __post_init__(self) -> None:
        """ValueError naming the first field outside its rule: every number finite, score_std >= 0,
        map_high >= map_low, the FPRs in (0, 1), n_images an integer >= 1, method a known rule; a
        conformal calibration has its rank k in [1, n] and fpr_bound = (n + 1 - k) / (n + 1)."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "method":
                one_of("method", value, METHODS)
            elif field.name in ("n_images", "conformal_rank"):
                if value is not None or field.name == "n_images":
                    number(field.name, value, f"[1, {self.n_images}]" if field.name == "conformal_rank" else "[1, inf)",
                           integer=True)
            elif field.name.endswith("fpr") or field.name == "fpr_bound":
                if value is not None or field.name != "fpr_bound":
                    number(field.name, value, "(0, 1)")
            elif not (field.name == "f1_threshold" and value is None):
                number(field.name, value, "[0, inf)" if field.name == "score_std" else "")
        if self.map_high < self.map_low:
            raise invalid("map_high", f"at least map_low = {self.map_low}", self.map_high)
        if (self.method == "conformal") != (self.conformal_rank is not None) or \
                (self.conformal_rank is None) != (self.fpr_bound is None):
            raise ValueError(f"conformal_rank and fpr_bound must be given with method \"conformal\" and only with it; "
                             f"got method {self.method!r}, conformal_rank {shown(self.conformal_rank)}, "
                             f"fpr_bound {shown(self.fpr_bound)}")
        if self.conformal_rank is not None:
            n, k = self.n_images, self.conformal_rank
            if not math.isclose(self.fpr_bound, (n + 1 - k) / (n + 1), rel_tol=1e-9):
                raise invalid("fpr_bound", f"(n_images + 1 - conformal_rank) / (n_images + 1) = {(n + 1 - k) / (n + 1)}",
                              self.fpr_bound)

    def guarantee(self) -> str:
        """The promise the image threshold rests on, in words."""
        n, alpha = self.n_images, self.target_fpr
        if self.fpr_bound is None:
            return (f"no finite-sample guarantee recorded: the threshold was set by the {self.method!r} rule on {n} "
                    f"normal images for a target false-alarm rate of {alpha:g} (`anomaly calibrate` records one)")
        bound = (f"at most {self.fpr_bound:.3g}" if self.fpr_bound <= alpha else
                 f"at most {self.fpr_bound:.3g}, above the target {alpha:g}: {normals_needed(alpha)} normals are needed "
                 f"for it")
        return (f"a new normal image, exchangeable with the {n} held-out normals calibrated on, is flagged with "
                f"probability {bound} (split conformal: above the {self.conformal_rank}-th smallest of {n} scores)")

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
        """From calibration.json: every field present (those in OPTIONAL may be null or absent), no other."""
        names = [field.name for field in dataclasses.fields(cls)]
        if not isinstance(values, dict):
            raise invalid("the calibration", "a JSON object", values)
        if missing := [name for name in names if name not in values and name not in OPTIONAL]:
            raise ValueError(f"missing field(s) {', '.join(missing)}; a calibration has {', '.join(names)}")
        if extra := sorted(set(values) - set(names)):
            raise ValueError(f"unknown field(s) {', '.join(extra)}; a calibration has {', '.join(names)}")
        return cls(**values)


def calibrate(normal_scores: ArrayLike, normal_maps: np.ndarray | Sequence[np.ndarray], *, fpr: float = 0.01,
              pixel_fpr: float = 0.001, labels: ArrayLike | None = None,
              scores: ArrayLike | None = None) -> Calibration:
    """Calibrate from normal validation images.

    normal_scores: (N,) image scores; normal_maps: (N, H, W) or (N, 1, H, W) float maps of the same
    images at model resolution, or N maps of their own sizes (a model with a scale, anomaly.tiling). `labels`/`scores` (optional, labelled data with anomalies) add the
    F1-optimal threshold, which is reported but never used as the default.
    """
    normal_scores = np.asarray(normal_scores, dtype=np.float64)
    image = conformal_threshold(normal_scores, fpr)
    normal_maps = [np.asarray(m, dtype=np.float32) for m in normal_maps]
    if len(normal_maps) != normal_scores.size or any(m.size == 0 for m in normal_maps) or not normal_maps:
        raise ValueError(f"need one non-empty map per normal score; got {normal_scores.size} scores and "
                         f"{len(normal_maps)} maps of shapes {sorted({m.shape for m in normal_maps})[:3]}")
    pixels = np.concatenate([m.ravel() for m in normal_maps])
    pixel_threshold = float(np.quantile(pixels, 1 - pixel_fpr))
    map_low = float(np.median(pixels))
    # the colour scale is in map units: the threshold of per-image map maxima, not the image threshold,
    # which may include a model's extra score term (ganomaly's latent error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the image threshold above already warned about few images
        map_threshold = conformal_threshold(np.array([m.max() for m in normal_maps]), fpr).threshold
    f1_threshold = None
    if labels is not None and scores is not None and len(set(np.asarray(labels).tolist())) == 2:
        from anomaly.metrics import f1_optimal_threshold

        f1_threshold = float(f1_optimal_threshold(labels, scores)[0])
    return Calibration(
        image_threshold=image.threshold, pixel_threshold=pixel_threshold,
        score_mean=float(normal_scores.mean()), score_std=float(normal_scores.std()),
        score_min=float(normal_scores.min()), score_max=float(normal_scores.max()),
        score_p50=float(np.quantile(normal_scores, 0.5)), score_p99=float(np.quantile(normal_scores, 0.99)),
        map_low=map_low, map_high=map_low + 2 * max(map_threshold - map_low, 1e-12),
        target_fpr=fpr, pixel_fpr=pixel_fpr, method="conformal", n_images=int(normal_scores.size),
        f1_threshold=f1_threshold, conformal_rank=image.rank, fpr_bound=image.fpr_bound,
    )
