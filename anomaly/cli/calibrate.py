"""`anomaly calibrate`: new thresholds from new normal images, same weights, a new model version."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from anomaly.cli.app import app, console, fail, user_errors

if TYPE_CHECKING:
    import numpy as np

    from anomaly.calibration import Calibration
    from anomaly.data import Sample
    from anomaly.detector import Detector
    from anomaly.tracking import Registration

Opt = typer.Option


def recalibrate(model: str, data: str, *, fpr: float | None = None, pixel_fpr: float | None = None,
                out: str | None = None, tracking: bool = True, experiment: str | None = None,
                register_as: str | None = None, promote: bool = False):
    """Score the normal images (label 0) of `data` with `model`, calibrate, write a bundle with the same
    weights and the new calibration; with `tracking`, log a calibration run and register it.
    Returns (old Calibration, new Calibration, bundle path or None, Registration or None): without
    `out` the bundle only lives in a temporary folder while it is logged, and the path is None."""
    from anomaly.bundle import save_bundle
    from anomaly.calibration import calibrate
    from anomaly.data import load_samples
    from anomaly.detector import Detector
    from anomaly.training import score_samples

    detector = Detector.load(model)
    normals = [s for s in load_samples(data) if s.label == 0]
    if not normals:
        raise ValueError(f"{data} has no normal images (label 0) to calibrate on")
    old = detector.calibration
    scores, maps = score_samples(detector.model, detector.config, normals)
    new = calibrate(scores, maps, fpr=old.target_fpr if fpr is None else fpr,
                    pixel_fpr=old.pixel_fpr if pixel_fpr is None else pixel_fpr)
    with ExitStack() as stack:
        folder = out or stack.enter_context(tempfile.TemporaryDirectory(prefix="anomaly-calibrated-"))
        bundle = save_bundle(folder, detector.config, detector.model.state_dict(), new)
        registration = _log_run(detector, model, data, normals, scores, new, bundle, experiment=experiment,
                                register_as=register_as, promote=promote) if tracking else None
    return old, new, bundle if out else None, registration


def _log_run(detector: Detector, model: str, data: str, normals: list[Sample], scores: np.ndarray, new: Calibration,
             bundle: Path, *, experiment: str | None, register_as: str | None, promote: bool) -> Registration:
    """The calibration run: params, new and previous (the detector's) thresholds, score histogram;
    registers `bundle`."""
    from anomaly import tracking as mlflow_tracking
    from anomaly.plots import score_histogram
    from anomaly.run_logging import describe, log_calibration, register

    info, old = detector.info, detector.calibration
    experiment = experiment or (mlflow_tracking.run_experiment(info["run_id"]) if info["run_id"] else
                                mlflow_tracking.default_experiment(data))
    fingerprint = mlflow_tracking.dataset_fingerprint(normals)
    tags = {"anomaly.kind": "calibrate", "dataset.fingerprint": fingerprint, "dataset.path": data,
            "source.model": model, "source.version": f"{info['name']}/{info['version']}" if info["name"] else model}
    with mlflow_tracking.start_run(experiment, "calibrate", tags) as run_id:
        mlflow_tracking.log_params({"model": model, "data": data, "fpr": new.target_fpr, "pixel_fpr": new.pixel_fpr,
                                    "n_images": len(normals)})
        mlflow_tracking.log_params(detector.config.to_dict(), prefix="model.")
        log_calibration(new)
        mlflow_tracking.log_metrics({"previous/image_threshold": old.image_threshold,
                                     "previous/pixel_threshold": old.pixel_threshold})
        mlflow_tracking.log_figure(score_histogram(scores, [], {"new threshold": new.image_threshold,
                                                                "previous threshold": old.image_threshold},
                                                   title="Scores of the new normal images"),
                                   "plots/score_histogram.png")
        registration = register(bundle, normals[0], name=register_as or info["name"] or experiment,
                                experiment=experiment, run_id=run_id, promote=promote, criterion=None,
                                fingerprint=fingerprint)
        describe(new, None, registration, extra=f"Re-calibrated {model} (same weights); previous image threshold "
                                                f"{old.image_threshold:.5g}.")
    return registration


@app.command("calibrate")
def calibrate_command(
    model: Annotated[str, Opt(help="bundle folder, runs:/<id>/model, models:/<name>@<alias> or models:/<name>/<v>")],
    data: Annotated[str, Opt(help="normal images: a folder, a manifest CSV or an MVTec folder (label-0 images)")],
    fpr: Annotated[Optional[float], Opt(help="target false-alarm rate (default: the model's own)")] = None,
    pixel_fpr: Annotated[Optional[float], Opt(help="target pixel false-positive rate (default: the model's)")] = None,
    out: Annotated[Optional[str], Opt(help="also write the re-calibrated bundle to this folder (default: none, "
                                            "only MLflow has it)")] = None,
    tracking: Annotated[bool, Opt("--tracking/--no-tracking", help="log a run and register a new "
                                                                   "version")] = True,
    experiment: Annotated[Optional[str], Opt(help="MLflow experiment (default: the source model's)")] = None,
    register_as: Annotated[Optional[str], Opt(help="registered model name (default: the source model's)")] = None,
    promote: Annotated[bool, Opt("--promote", help="move the 'champion' alias to the new version")] = False,
) -> None:
    """Re-calibrate thresholds on new normal images without retraining; registers a new model version."""
    if not tracking and not out:
        fail("with --no-tracking, give --out: otherwise the new calibration would be written nowhere")
    with user_errors():
        old, new, bundle, registration = recalibrate(model, data, fpr=fpr, pixel_fpr=pixel_fpr, out=out,
                                                     tracking=tracking, experiment=experiment,
                                                     register_as=register_as, promote=promote)
    console.print(f"[bold green]re-calibrated[/] on {new.n_images} normal images: image threshold "
                  f"{old.image_threshold:.5g} -> [bold]{new.image_threshold:.5g}[/] ({new.method}, target FPR "
                  f"{new.target_fpr}); pixel threshold {old.pixel_threshold:.5g} -> {new.pixel_threshold:.5g}")
    if registration is not None:
        r = registration
        console.print(f"MLflow run [bold]{r.run_id}[/] in experiment {r.experiment!r} · model "
                      f"[bold]models:/{r.name}/{r.version}[/] · champion: {'yes' if r.promoted else 'no'} ({r.reason})")
    if out:
        console.print(f"model bundle: [bold]{Path(bundle)}[/]")
