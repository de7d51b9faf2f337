"""What `anomaly train` says after the numbers: what they mean in plain words, and a heatmap to open."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from anomaly.data import Sample
    from anomaly.evaluation import MetricReport


def plain_words(report: MetricReport, flagged_defects: int) -> list[str]:
    """The test results for someone who has never read an ROC curve."""
    false_alarms = round((report.false_alarm_rate or 0) * report.n_normal)
    lines = [f"The model flagged {flagged_defects} of the {report.n_anomalous} test images with a defect, "
             f"and {false_alarms} of the {report.n_normal} normal ones (false alarms; the threshold aims at "
             f"{report.target_fpr or 0:.0%} of normal images)."]
    if report.image_auroc is not None:
        lines.append(f"Image AUROC {report.image_auroc:.2f}: the chance that an image with a defect scores higher "
                     "than a normal one (1 = always, 0.5 = a coin toss).")
    if report.pixel_auroc is not None:
        lines.append(f"Pixel AUROC {report.pixel_auroc:.2f}: the same for single pixels, so how well the heatmap "
                     "lights up the defect itself rather than its surroundings.")
    if report.aupro is not None:
        lines.append(f"AUPRO {report.aupro:.2f}: the share of each defect's area the heatmap covers at low false-alarm "
                     "rates, averaged so that small defects count as much as large ones.")
    return lines


def defect_overlays(bundle: Path, samples: Sequence[Sample], folder: Path) -> list[Path]:
    """Score the test split's defective images with the saved bundle and write the heatmap overlay (regions
    boxed) of each one the model flags to `folder`; returns their paths, highest score first."""
    from anomaly.detector import Detector
    from anomaly.visualize import encode_png

    detector = Detector.load(str(bundle))
    defective = [s for s in samples if s.split == "test" and s.label == 1]
    arrays = [detector.decode(s.image) for s in defective]  # decoded once: scored, then drawn on
    flagged = [(p.score, s, a, p) for s, a, p in zip(defective, arrays, detector.predict(arrays)) if p.is_anomalous]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for _, sample, array, prediction in sorted(flagged, key=lambda t: -t[0]):
        path = folder / f"{Path(sample.image).stem}.png"
        path.write_bytes(encode_png(detector.heatmap(array, prediction)))
        paths.append(path)
    return paths
