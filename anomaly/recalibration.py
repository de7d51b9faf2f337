"""Re-calibration: new thresholds from new normal images, the same model (weights or ONNX graph).

    result = recalibrate("models:/mtd@champion", "new_normals/", fpr=0.01, out="runs/mtd-recalibrated")
    result.previous.image_threshold, result.calibration.image_threshold, result.calibration.guarantee()

Scoring goes through `Detector` (either backend); the MLflow run is anomaly.run_logging's
`log_recalibration`; files are written by anomaly.bundle (through `Detector.save`).
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from anomaly.calibration import Calibration
    from anomaly.tracking import Registration


class Recalibration(NamedTuple):
    previous: Calibration  # the model's calibration before
    calibration: Calibration  # the new one
    bundle_path: Path | None  # `out`, written; None when the folder only lived while it was logged
    registration: Registration | None  # the MLflow run and model version (with tracking)


def recalibrate(model: str, data: str, *, fpr: float | None = None, pixel_fpr: float | None = None,
                out: str | Path | None = None, tracking: bool = True, experiment: str | None = None,
                register_as: str | None = None, promote: bool = False, backend: str = "torch",
                batch_size: int = 16) -> Recalibration:
    """Score the normal images (label 0) of `data` with `model`, calibrate on them (anomaly.calibration:
    the target FPRs default to the model's own), and write the model with the new calibration to `out`.
    With `tracking`, log a calibration run and register the result as a new model version (a bundle
    only: an ONNX export has no weights to register). Raises ValueError naming the problem."""
    from anomaly.calibration import calibrate
    from anomaly.data import load_samples
    from anomaly.detector import Detector

    if not tracking and out is None:
        raise ValueError("without tracking, give an output folder: otherwise the new calibration is written nowhere")
    detector = Detector.load(model, backend=backend)
    if tracking and not detector.has_weights:
        raise ValueError(f"{model} is an ONNX export, which has no weights to register in MLflow: re-calibrate "
                         f"without tracking (--no-tracking --out FOLDER), or re-calibrate the bundle it came from")
    normals = [s for s in load_samples(data) if s.label == 0]
    if not normals:
        raise ValueError(f"{data} has no normal images (label 0) to calibrate on")
    previous = detector.calibration
    scores, maps = detector.score_at_model_size([s.image for s in normals], batch_size=batch_size)
    new = calibrate(scores, maps, fpr=previous.target_fpr if fpr is None else fpr,
                    pixel_fpr=previous.pixel_fpr if pixel_fpr is None else pixel_fpr)
    with ExitStack() as stack:
        folder = out or stack.enter_context(tempfile.TemporaryDirectory(prefix="anomaly-calibrated-"))
        bundle = detector.save(folder, new)
        registration = None
        if tracking:
            from anomaly.run_logging import log_recalibration

            registration = log_recalibration(detector, model, data, normals, scores, new, bundle,
                                             experiment=experiment, register_as=register_as, promote=promote)
    return Recalibration(previous, new, bundle if out else None, registration)
