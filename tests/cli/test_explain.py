"""What `anomaly train` says after the table: the plain-words lines and the overlays of flagged defects."""

import json

import numpy as np
from PIL import Image

from anomaly.cli.explain import defect_overlays, plain_words
from anomaly.detector import Detector
from anomaly.evaluation import evaluate


def test_overlays_are_written_for_exactly_the_flagged_defects_highest_score_first(trained, tmp_path):
    defective = [s for s in trained.samples if s.split == "test" and s.label == 1]
    scores = [p.score for p in Detector.load(trained.bundle_path).predict([s.image for s in defective])]
    threshold = float(np.median(scores))  # as the bundle's threshold: about half the defects flagged
    strict = tmp_path / "strict"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in ("config.json", "weights.safetensors"):
        (bundle / name).write_bytes((trained.bundle_path / name).read_bytes())
    calibration = json.loads((trained.bundle_path / "calibration.json").read_text())
    (bundle / "calibration.json").write_text(json.dumps({**calibration, "image_threshold": threshold}))
    paths = defect_overlays(bundle, trained.samples, strict)
    scored = {s.image.stem: score for s, score in zip(defective, scores)}
    expected = sorted((stem for stem, score in scored.items() if score >= threshold), key=lambda stem: -scored[stem])
    assert [p.stem for p in paths] == expected and 0 < len(paths) < len(defective)
    assert sorted(strict.iterdir()) == sorted(paths)
    for path in paths:
        image = next(s.image for s in defective if s.image.stem == path.stem)
        assert Image.open(path).size == Image.open(image).size  # at the image's own resolution


def test_plain_words_count_the_false_alarms_the_report_measured(trained):
    detector = Detector.load(trained.bundle_path)
    report, predictions = evaluate(detector, [s for s in trained.samples if s.split == "test"])  # the brute force
    test = [s for s in trained.samples if s.split == "test"]
    normals = sum(p.is_anomalous for s, p in zip(test, predictions) if s.label == 0)
    first, *meanings = plain_words(report, 3)
    assert first.startswith(f"The model flagged 3 of the {report.n_anomalous} test images with a defect, and "
                            f"{normals} of the {report.n_normal} normal ones")
    assert [line.split()[0] for line in meanings] == ["Image", "Pixel", "AUPRO"]
