"""The audit of a model trained at scale 1 on a 500x1250 image: its row, map and overlay at 500x1250."""

from __future__ import annotations

import numpy as np
from PIL import Image

from anomaly.audit import AuditOptions, read_rows, run_audit
from anomaly.detector import Detector
from tests.tiling.scaled import save_png, texture, train_scaled


def test_a_500x1250_image_is_audited_at_its_own_size(tmp_path):
    result = train_scaled(tmp_path / "model")
    image = texture((500, 1250), 7)
    image[100:110, 1100:1110] = 1.0
    png = save_png(image, tmp_path / "wide.png")
    detector = Detector.load(result.bundle_path, device="cpu")
    out = tmp_path / "audit"
    run_audit(detector, [str(png)], AuditOptions(out=out, overlays="all", maps=True), report=False)
    [row] = read_rows(out)
    assert (int(row["height"]), int(row["width"])) == (500, 1250) and row["verdict"] == "anomalous"
    amap = np.load(out / row["map"])
    [want] = detector.predict([png])
    assert amap.shape == (500, 1250)
    np.testing.assert_allclose(amap, want.anomaly_map, atol=1e-6)
    assert Image.open(out / row["overlay"]).size == (1250, 500)
