"""What a training or calibration run puts in MLflow, so that it can be reviewed in the UI alone.

Metrics: `train/*` per epoch and `val/*` at the epochs that validate (the training loop, anomaly.training),
`calibration/*` (thresholds, the threshold's guarantee and normal-score statistics), `painted/*` (image and
pixel AUROC on defects painted into the held-out normals, anomaly.painted), `test/*` (image/pixel AUROC, AUPRO,
F1; `test/<defect>/*` per defect). Artifacts: `calibration.json`, `evaluation.json`,
`plots/score_histogram.png`, `plots/roc.png`, `plots/examples.png` (input / reconstruction / heatmap of the
highest-scoring normal and anomalous test images), `examples/*.png` (the heatmap overlays alone) and the
pyfunc model `model/`.
A re-calibration run (`log_recalibration`): `calibration/*`, `previous/*` thresholds, the new normals'
score histogram, `calibration.json` and the registered model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from anomaly import tracking
from anomaly.bundle import load_bundle
from anomaly.calibration import Calibration
from anomaly.data import Sample
from anomaly.detector import Detector
from anomaly.painted import summary
from anomaly.plots import example_grid, roc_figure, score_histogram

if TYPE_CHECKING:
    from anomaly.config import TrainConfig
    from anomaly.evaluation import MetricReport
    from anomaly.training import TrainResult


def log_calibration(calibration: Calibration) -> None:
    """Thresholds and normal-score statistics as `calibration/*` metrics and `calibration.json`."""
    tracking.log_metrics({f"calibration/{k}": v for k, v in calibration.to_dict().items()})
    tracking.log_dict(calibration.to_dict(), "calibration.json")
    tracking.set_tags({"calibration.method": calibration.method})


def report_metrics(report: MetricReport) -> dict[str, float | None]:
    """`test/<metric>` overall and `test/<defect>/<metric>` per defect type."""
    keys = ("image_auroc", "pixel_auroc", "aupro", "f1", "f1_optimal", "f1_optimal_threshold", "false_alarm_rate",
            "images_per_second")
    values = {f"test/{k}": getattr(report, k) for k in keys}
    for defect, metrics in report.per_defect.items():
        values.update({f"test/{defect}/{k}": v for k, v in metrics.items() if k != "n"})
    return values


def _example_rows(detector: Detector, samples: Sequence[Sample], scores: np.ndarray) -> list[tuple]:
    """(title, input, reconstruction, overlay) for the top normal and anomalous image: the input and its
    overlay (regions boxed) at the image's own size, the reconstruction at the model's."""
    rows = []
    for label, kind in ((0, "normal"), (1, "anomalous")):
        candidates = [i for i, s in enumerate(samples) if s.label == label]
        if not candidates:
            continue
        top = max(candidates, key=lambda i: scores[i])
        image = detector.decode(samples[top].image)
        [prediction] = detector.predict_arrays([image])
        heat = detector.heatmap(image, prediction)
        tracking.log_image(heat, f"examples/top_{kind}_heatmap.png")
        rows.append((f"top {kind}: {Path(str(samples[top].image)).name}\nscore {scores[top]:.4g}",
                     image, detector.reconstruct([image])[0], heat))
    return rows


def log_plots(detector: Detector, samples: Sequence[Sample], scores: np.ndarray,
              report: MetricReport | None, thresholds: dict[str, float]) -> None:
    """Score histogram (normals vs anomalies, threshold lines), ROC when both labels, example grid."""
    labels = np.array([s.label for s in samples])
    tracking.log_figure(score_histogram(scores[labels == 0], scores[labels == 1], thresholds),
                        "plots/score_histogram.png")
    if report is not None and report.image_auroc is not None:
        tracking.log_figure(roc_figure(labels, scores, detector.calibration.image_threshold, report.image_auroc),
                            "plots/roc.png")
    tracking.log_figure(example_grid(_example_rows(detector, samples, scores)), "plots/examples.png")


def promotion_criterion(report: MetricReport | None, painted_aurocs: dict[str, float]) -> tuple[str, float] | None:
    """(metric, value) the promotion rule compares: the test image AUROC when there are labelled test images,
    else the drawn defects' pixel AUROC (the first signal the benchmarks choose settings on)."""
    if report is not None and report.image_auroc is not None:
        return tracking.CRITERION, report.image_auroc
    painted = painted_aurocs.get(tracking.FALLBACK_CRITERION.removeprefix("painted/"))
    return None if painted is None else (tracking.FALLBACK_CRITERION, painted)


def register(bundle: Path, example: Sample, *, name: str, experiment: str, run_id: str, promote: bool,
             criterion: tuple[str, float] | None, fingerprint: str) -> tracking.Registration:
    """Log the bundle as the run's model, register it under `name`, apply the promotion rule."""
    version = tracking.log_bundle(bundle, name, Path(example.image).read_bytes())
    promoted, reason = tracking.promote(name, version, force=promote, criterion=criterion, fingerprint=fingerprint)
    tracking.set_tags({"registered_model": f"{name}/{version}", "champion": "yes" if promoted else "no"})
    return tracking.Registration(run_id, experiment, name, version, promoted, reason, tracking.tracking_uri())


def describe(calibration: Calibration, report: MetricReport | None, registration: tracking.Registration,
             extra: str = "") -> None:
    """The run's description (the note at the top of its page in the UI)."""
    c = calibration
    lines = [f"**Image threshold {c.image_threshold:.5g}** ({c.method} on {c.n_images} normal images, target FPR "
             f"{c.target_fpr}); pixel threshold {c.pixel_threshold:.5g}. Normal scores: mean {c.score_mean:.4g}, "
             f"std {c.score_std:.3g}, max {c.score_max:.4g}.", f"Guarantee: {c.guarantee()}.", extra]
    if report is not None:
        def fmt(v: Any) -> str:
            return "n/a" if v is None else f"{v:.3f}"
        lines.append(f"Test split: image AUROC {fmt(report.image_auroc)}, pixel AUROC {fmt(report.pixel_auroc)}, "
                     f"AUPRO {fmt(report.aupro)}, F1 at the threshold {fmt(report.f1)} "
                     f"({report.n_normal} normal, {report.n_anomalous} anomalous).")
    r = registration
    lines.append(f"Model `models:/{r.name}/{r.version}`; champion: {'yes' if r.promoted else 'no'} ({r.reason}).")
    lines.append("Plots and calibration.json are under Artifacts.")
    tracking.set_tags({"mlflow.note.content": "\n\n".join(line for line in lines if line)})


def log_recalibration(detector: Detector, model: str, data: str, normals: list[Sample], scores: np.ndarray,
                      new: Calibration, bundle: Path, *, experiment: str | None, register_as: str | None,
                      promote: bool) -> tracking.Registration:
    """The calibration run of anomaly.recalibration: params, the new and previous (the detector's) thresholds,
    a histogram of the new normals' scores; registers `bundle` as a new version of the source model."""
    info, old = detector.info, detector.calibration
    experiment = experiment or (tracking.run_experiment(info["run_id"]) if info["run_id"] else
                                tracking.default_experiment(data))
    fingerprint = tracking.dataset_fingerprint(normals)
    tags = {"anomaly.kind": "calibrate", "dataset.fingerprint": fingerprint, "dataset.path": data,
            "source.model": model, "source.version": f"{info['name']}/{info['version']}" if info["name"] else model}
    with tracking.start_run(experiment, "calibrate", tags) as run_id:
        tracking.log_params({"model": model, "data": data, "fpr": new.target_fpr, "pixel_fpr": new.pixel_fpr,
                             "n_images": len(normals)})
        tracking.log_params(detector.config.to_dict(), prefix="model.")
        log_calibration(new)
        tracking.log_metrics({"previous/image_threshold": old.image_threshold,
                              "previous/pixel_threshold": old.pixel_threshold})
        tracking.log_figure(score_histogram(scores, [], {"new threshold": new.image_threshold,
                                                         "previous threshold": old.image_threshold},
                                            title="Scores of the new normal images"), "plots/score_histogram.png")
        registration = register(bundle, normals[0], name=register_as or info["name"] or experiment,
                                experiment=experiment, run_id=run_id, promote=promote, criterion=None,
                                fingerprint=fingerprint)
        describe(new, None, registration, extra=f"Re-calibrated {model} (same weights); previous image threshold "
                                                f"{old.image_threshold:.5g}.")
    return registration


def log_training(config: TrainConfig, result: TrainResult, *, run_id: str, experiment: str,
                 fingerprint: str) -> TrainResult:
    """Everything after the fit: calibration, test metrics and plots, the registered model."""
    from anomaly.evaluation import evaluate

    tracking.log_params(result.model_config.to_dict(), prefix="model.")
    tracking.log_params({"epochs_trained": result.config.epochs})  # `epochs` is the count asked for
    log_calibration(result.calibration)
    tracking.log_metrics({f"painted/{k}": v for k, v in result.painted_aurocs.items()})
    detector = Detector(load_bundle(result.bundle_path), source=str(result.bundle_path))
    test = [s for s in result.samples if s.split == "test"] if config.evaluate else []
    report = None
    if test:
        report, predictions = evaluate(detector, test, batch_size=config.batch_size)
        tracking.log_metrics(report_metrics(report))
        tracking.log_dict(report.to_dict(), "evaluation.json")
        shown, scores = test, np.array([p.score for p in predictions])
    else:  # no labels: the held-out normals alone
        shown = result.val_samples
        scores = np.array([p.score for p in detector.predict([s.image for s in shown], batch_size=config.batch_size)])
    log_plots(detector, shown, scores, report, {"image threshold": result.calibration.image_threshold})
    registration = register(result.bundle_path, result.val_samples[0], name=config.register_as or experiment,
                            experiment=experiment, run_id=run_id, promote=config.promote,
                            criterion=promotion_criterion(report, result.painted_aurocs), fingerprint=fingerprint)
    describe(result.calibration, report, registration, summary(result.painted_aurocs))
    return dataclasses.replace(result, report=report, registration=registration)
