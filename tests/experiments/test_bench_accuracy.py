"""The accuracy suite command on a tiny dataset, its numbers checked against independent computations."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy.stats import binomtest

from experiments.bench_accuracy import consistent_false_alarms, main
from experiments.blind_maps import blind_metrics
from experiments import common
from experiments.common import dataset_path
from tests.conftest import sample_subset


def brute_force_auroc(normal: list[float], anomalous: list[float]) -> float:
    """P(anomalous score > normal score), ties counting half, over every pair."""
    pairs = [(a > n) + 0.5 * (a == n) for a in anomalous for n in normal]
    return sum(pairs) / len(pairs)


def exact_consistent(n: int, target: Fraction) -> tuple[int, int]:
    """consistent_false_alarms in exact rational arithmetic: both binomial tails above 2.5%."""
    pmf = [comb(n, k) * target**k * (1 - target) ** (n - k) for k in range(n + 1)]
    ok = [k for k in range(n + 1) if sum(pmf[: k + 1]) > Fraction(1, 40) and sum(pmf[k:]) > Fraction(1, 40)]
    return ok[0], ok[-1]


@pytest.mark.parametrize("n, target", [(6, "1/100"), (190, "1/100"), (134, "1/20"), (25, "1/10"), (300, "1/1000")])
def test_consistent_false_alarms_is_exact_and_dual_to_clopper_pearson(n, target):
    lo, hi = consistent_false_alarms(n, float(Fraction(target)))
    assert (lo, hi) == exact_consistent(n, Fraction(target))
    for k in range(n + 1):  # inside the range <=> the target lies in the Clopper-Pearson interval of k / n
        interval = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert (lo <= k <= hi) == (interval.low < float(Fraction(target)) < interval.high), k


def test_bad_input_names_the_problem():
    with pytest.raises(FileNotFoundError, match="dataset 'nosuch'"):
        dataset_path("nosuch")
    with pytest.raises(ValueError, match="n >= 1"):
        consistent_false_alarms(0, 0.01)


def test_suite_command_on_a_tiny_dataset(tmp_path, monkeypatch):
    from anomaly.data import decode_image, load_samples
    from anomaly.detector import Detector

    (tmp_path / "tiny").mkdir()
    data = sample_subset(tmp_path / "tiny" / "manifest.csv", 40, 6, 6)
    out, results = tmp_path / "out", tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    monkeypatch.setattr(common, "RESULTS", results)  # --section writes here, not into the repository's file
    argv = ["--data", str(data), "--out", str(out), "--section", "suite", "--", "--epochs", "1", "--image-size", "64"]
    result = main(argv)
    saved = json.loads((out / "accuracy.json").read_text())
    row = saved["datasets"]["tiny"]
    assert saved["provenance"]["command"].endswith(" ".join(argv))
    assert result["datasets"]["tiny"]["image_auroc"] == row["image_auroc"]

    test = [s for s in load_samples(str(data)) if s.split == "test"]
    predictions = Detector.load(row["bundle"]).predict([s.image for s in test])
    normal = [p for s, p in zip(test, predictions) if s.label == 0]
    anomalous = [p for s, p in zip(test, predictions) if s.label == 1]
    assert (row["n_normal"], row["n_anomalous"]) == (len(normal), len(anomalous)) == (6, 6)
    assert row["image_auroc"] == pytest.approx(
        brute_force_auroc([p.score for p in normal], [p.score for p in anomalous]), abs=1e-9)
    assert row["false_alarms"] == sum(p.is_anomalous for p in normal)
    lo, hi = exact_consistent(len(normal), Fraction(row["target_fpr"]).limit_denominator(10**6))
    assert row["false_alarms_consistent"] == [lo, hi]
    assert row["false_alarm_inside"] == (lo <= row["false_alarms"] <= hi)
    megapixels = sum(np.prod(decode_image(s.image, 1).shape[1:]) for s in test) / 1e6
    assert row["megapixels_per_second"] == pytest.approx(megapixels / row["seconds"], rel=1e-9)
    assert 0 < row["train_minutes"] < 10
    assert row["epochs"] == 1  # parsed from train's summary line
    blind = blind_metrics(str(data)).values()
    assert (row["blind_pixel_auroc"], row["blind_aupro"]) == (max(a for a, _ in blind), max(p for _, p in blind))

    # the markdown tables carry the same numbers: the dataset row, mean and worst over one dataset
    table = [line.split(" | ") for line in (out / "accuracy.md").read_text().splitlines() if line.startswith("| ")]
    by_label = {cells[0].strip("| *"): cells for cells in table}
    for label in ("tiny", "mean", "worst"):
        assert by_label[label][2] == f"{row['image_auroc']:.3f}"
        assert by_label[label][6] == f"{row['images_per_second']:.1f}"
    assert by_label["tiny"][8] == f"{row['false_alarms']}/6 ({row['false_alarm_rate']:.3f})"
    assert by_label["tiny"][12].strip("| ") == f"{row['blind_pixel_auroc']:.3f} / {row['blind_aupro']:.3f}"
    section = results.read_text().split("<!-- suite:start -->")[1].split("<!-- suite:end -->")[0]
    assert f"- commit: {saved['provenance']['commit']}" in section
    assert "| " + " | ".join(by_label["tiny"]).strip("| ") + " |" in section
    painted = row["held_out"]  # as train printed it
    assert (f"- tiny: epochs 1; painted drawn {painted['drawn_image_auroc']:.3f} / {painted['drawn_pixel_auroc']:.3f}, "
            f"thin {painted['thin_image_auroc']:.3f} / {painted['thin_pixel_auroc']:.3f}") in section
    per_defect = {cells[0].strip("| "): cells for cells in table if cells[0].strip("| ") in row["per_defect"]}
    assert set(per_defect) == {s.defect for s in test if s.label == 1}
    with open(data) as f:
        assert len([r for r in csv.DictReader(f) if r["split"] == "test"]) == row["n_test"]
