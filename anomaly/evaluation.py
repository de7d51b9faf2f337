"""`evaluate`: a Detector on labelled images -> image AUROC, pixel AUROC, AUPRO, F1, per defect type; the false
alarms on the normal images and, when asked, painted defects found in them (useful with normal images alone)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from anomaly.data import Sample, decode_mask
from anomaly.detector import Detector, Prediction
from anomaly.metrics import aupro, f1_at_threshold, f1_optimal_threshold, image_auroc, pixel_auroc
from anomaly.painted import held_out_checks


@dataclass(frozen=True)
class MetricReport:
    image_auroc: float | None  # None where the metric is undefined (e.g. no anomalies)
    pixel_auroc: float | None
    aupro: float | None  # Bergmann et al. 2020, integrated up to FPR 0.3, normalised to [0, 1]
    f1: float | None  # at the calibrated threshold
    threshold: float
    f1_optimal: float | None  # best F1 over thresholds (reported, not used)
    f1_optimal_threshold: float | None
    n_normal: int
    n_anomalous: int
    per_defect: dict[str, dict[str, Any]]
    images_per_second: float  # decode + preprocess + inference + upsampling, end to end
    seconds: float
    false_alarm_rate: float | None = None  # of the normal images, those scoring at or above the threshold
    target_fpr: float | None = None  # the false-alarm rate the threshold was calibrated for
    false_alarm_interval: tuple[float, float] | None = None  # 95% Clopper-Pearson interval of false_alarm_rate
    fpr_bound: float | None = None  # the false-alarm rate the calibration guarantees (None: no guarantee recorded)
    guarantee: str = ""  # that guarantee in words (anomaly.calibration.Calibration.guarantee)
    painted: dict[str, float] = field(default_factory=dict)  # anomaly.painted.held_out_checks on the normal images

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def false_alarm_interval(alarms: int, normals: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) `confidence` interval of a false-alarm rate seen as `alarms` of `normals`."""
    from scipy.stats import binomtest

    interval = binomtest(alarms, normals).proportion_ci(confidence, method="exact")
    return float(interval.low), float(interval.high)


def _pixel_metrics(masks: list[np.ndarray | None], maps: list[np.ndarray]) -> tuple[float | None, float | None]:
    pairs = [(m, a) for m, a in zip(masks, maps) if m is not None]
    if not pairs or not any(m.any() for m, _ in pairs):
        return None, None
    masks_, maps_ = zip(*pairs)
    return pixel_auroc(masks_, maps_), aupro(masks_, maps_, max_fpr=0.3)


def _metrics(labels: np.ndarray, scores: np.ndarray, masks: list, maps: list) -> dict[str, Any]:
    both = len(set(labels.tolist())) == 2
    pixel, pro = _pixel_metrics(masks, maps)
    return {"image_auroc": image_auroc(labels, scores) if both else None, "pixel_auroc": pixel, "aupro": pro,
            "n": int(len(labels))}


def evaluate(detector: Detector, samples: Sequence[Sample], *, batch_size: int = 16,
             on_batch: Callable[[int], None] | None = None, painted: bool = False,
             on_draw: Callable[[], None] = lambda: None) -> tuple[MetricReport, list[Prediction]]:
    """Score `samples` (usually the test split) and compute every metric at the images' own sizes.

    Masks: an anomalous image without a mask is left out of the pixel metrics; normal images count
    as all-normal pixels. `on_batch(n)` is called after each batch (progress bars). With `painted`, the
    defects of anomaly.painted are also painted into the normal images and found again (a check on new
    normal images that needs no labelled defect); `on_draw()` is called after each of its draws."""
    if not samples:
        raise ValueError("nothing to evaluate: the data has no test images (split 'test')")
    masks = [decode_mask(s.mask) if s.mask else None for s in samples]  # before scoring: a bad mask fails fast
    start = time.perf_counter()
    predictions: list[Prediction] = []
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        predictions += detector.predict([s.image for s in chunk], batch_size=batch_size)
        if on_batch:
            on_batch(len(chunk))
    seconds = time.perf_counter() - start
    labels = np.array([s.label for s in samples])
    scores = np.array([p.score for p in predictions])
    maps = [p.anomaly_map for p in predictions]
    for sample, mask, amap in zip(samples, masks, maps):
        if mask is not None and mask.shape != amap.shape:
            raise ValueError(f"mask {sample.mask} is {mask.shape[1]}x{mask.shape[0]} but its image {sample.image} "
                             f"is {amap.shape[1]}x{amap.shape[0]}; masks must match their images")
    masks = [m if m is not None else (np.zeros(a.shape, bool) if s.label == 0 else None)
             for s, m, a in zip(samples, masks, maps)]
    threshold = detector.calibration.image_threshold
    overall = _metrics(labels, scores, masks, maps)
    has_anomalies = bool(labels.any())
    best_threshold, best_f1 = f1_optimal_threshold(labels, scores) if has_anomalies else (None, None)
    normal_scores = scores[labels == 0]
    normals = [s for s in samples if s.label == 0]
    per_defect = {}
    for defect in sorted({s.defect for s in samples if s.label == 1}):
        keep = [i for i, s in enumerate(samples) if s.label == 0 or s.defect == defect]
        per_defect[defect] = _metrics(labels[keep], scores[keep], [masks[i] for i in keep], [maps[i] for i in keep])
    report = MetricReport(
        image_auroc=overall["image_auroc"], pixel_auroc=overall["pixel_auroc"], aupro=overall["aupro"],
        f1=f1_at_threshold(labels, scores, threshold) if has_anomalies else None, threshold=threshold,
        f1_optimal=best_f1, f1_optimal_threshold=best_threshold, n_normal=int((labels == 0).sum()),
        n_anomalous=int(labels.sum()), per_defect=per_defect, images_per_second=len(samples) / seconds,
        seconds=seconds, false_alarm_rate=float((normal_scores >= threshold).mean()) if normals else None,
        target_fpr=detector.calibration.target_fpr,
        false_alarm_interval=false_alarm_interval(int((normal_scores >= threshold).sum()), len(normals))
        if normals else None,
        fpr_bound=detector.calibration.fpr_bound, guarantee=detector.calibration.guarantee(),
        painted=held_out_checks(detector, normals, on_draw=on_draw) if painted else {})
    return report, predictions
