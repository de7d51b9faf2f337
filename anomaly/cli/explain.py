"""What `anomaly train` says after the numbers: what they mean in plain words, and a heatmap to open."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from anomaly.data import Sample
    from anomaly.evaluation import MetricReport


def plain_words(report: MetricReport, flagged_defects: int, flagged_normals: int) -> list[str]:
    """The test results for someone who has never read an ROC curve."""
    lines = [f"The model flagged {flagged_defects} of the {report.n_anomalous} test images with a defect, "
             f"and {flagged_normals} of the {report.n_normal} normal ones (false alarms; the threshold aims at "
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


def defect_overlays(bundle: Path, samples: Sequence[Sample], folder: Path) -> tuple[list[Path], int, int]:
    """Score the test split with the saved bundle; write the heatmap overlay (regions boxed) of every test
    image the model flags as defective to `folder`. Returns (the flagged defects' overlays, highest score
    first; the number of flagged defects; the number of flagged normal images)."""
    from anomaly.detector import Detector
    from anomaly.visualize import encode_png

    detector = Detector.load(str(bundle))
    test = [s for s in samples if s.split == "test"]
    arrays = [detector.decode(s.image) for s in test]
    predictions = [p for i in range(0, len(arrays), 16) for p in detector.predict_arrays(arrays[i:i + 16])]
    flagged = [(p.score, s, a, p) for s, a, p in zip(test, arrays, predictions) if p.is_anomalous and s.label == 1]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for _, sample, array, prediction in sorted(flagged, key=lambda t: -t[0]):
        path = folder / f"{Path(sample.image).stem}.png"
        path.write_bytes(encode_png(detector.heatmap(array, prediction)))
        paths.append(path)
    false_alarms = sum(p.is_anomalous for s, p in zip(test, predictions) if s.label == 0)
    return paths, len(flagged), false_alarms
