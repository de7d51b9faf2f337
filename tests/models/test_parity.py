"""Bundles trained by earlier code (tiny networks on the bundled sample: fixtures/parity/README.md) load with
the current code and predict what they predicted then, to float rounding."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from anomaly.detector import Detector

PARITY = Path(__file__).parents[1] / "fixtures" / "parity"
MODELS = ("draem", "ssim-ae", "inpaint", "twodec", "ganomaly")


def assert_predicts_as_saved(bundle: Path, saved: Path) -> None:
    expected = np.load(saved)
    predictions = Detector.load(bundle, device="cpu").predict_arrays(list(np.load(PARITY / "inputs.npy")))
    np.testing.assert_allclose([p.score for p in predictions], expected["score"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose([p.normalised_score for p in predictions], expected["normalised_score"],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.stack([p.anomaly_map for p in predictions]), expected["anomaly_map"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_an_old_bundle_predicts_as_it_did(name):
    assert_predicts_as_saved(PARITY / name, PARITY / name / "predictions.npz")


def test_an_old_bundle_with_only_the_options_it_was_given_predicts_as_it_did(tmp_path):
    """Bundles written before every option was saved hold only those given; the rest take the value
    in force then (seg_depth: read from the weights)."""
    bundle = Path(shutil.copytree(PARITY / "draem", tmp_path / "draem"))
    config = json.loads((bundle / "config.json").read_text())
    config["options"] = {"crop": 32, "seg_width": 4}
    (bundle / "config.json").write_text(json.dumps(config))
    assert_predicts_as_saved(bundle, PARITY / "draem" / "predictions.npz")
