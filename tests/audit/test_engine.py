"""The local engine: every input becomes one row, scores equal the Detector's, outputs stay in --out."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from anomaly.audit import AuditOptions, expand_inputs, read_rows, run_audit
from anomaly.audit import engine
from tests.audit.conftest import BROKEN


@pytest.fixture(scope="module")
def audited(detector, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    paths, _ = expand_inputs([str(inputs)])
    return paths, run_audit(detector, paths, AuditOptions(out=out, batch_size=4), report=False), out


def test_one_row_per_input_in_order_with_errors(audited):
    paths, summary, out = audited
    rows = read_rows(out)
    assert [r["path"] for r in rows] == paths == [r["path"] for r in summary.rows]
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["verdict"] == "error"}
    assert set(errors) == set(BROKEN) and summary.errors == 3
    assert "empty file" in errors["empty.png"] and "not an image" in errors["notes.png"]
    assert "truncated" in errors["truncated.jpg"]
    assert summary.stages.keys() == {"decode", "infer", "write"} and summary.new == len(paths)


def test_scores_match_the_detector(audited, detector):
    paths, summary, _ = audited
    scored = [r for r in summary.rows if r["verdict"] != "error"]
    predictions = detector.predict([r["path"] for r in scored], batch_size=1)
    for r, p in zip(scored, predictions):
        assert r["score"] == pytest.approx(p.score, abs=1e-5)
        assert r["normalised_score"] == pytest.approx(p.normalised_score, abs=1e-5)
        assert r["verdict"] == ("anomalous" if p.is_anomalous else "normal")
        assert (r["height"], r["width"]) == p.anomaly_map.shape and r["regions"] == len(p.regions)
        assert r["threshold"] == detector.calibration.image_threshold and r["model_name"]


def test_overlays_for_anomalous_only_by_default(audited):
    _, summary, out = audited
    for r in summary.rows:
        assert (r["overlay"] is not None) == (r["verdict"] == "anomalous")
        assert r["map"] is None
    assert len(list((out / "thumbs").glob("*.jpg"))) == len(summary.rows) - summary.errors


@pytest.mark.parametrize("overlays", ["all", "none"])
def test_overlay_modes_maps_and_threshold(detector, inputs, tmp_path, overlays):
    paths = [str(p) for p in sorted((inputs / "a").glob("*.jpg"))[:4]]
    summary = run_audit(detector, paths, AuditOptions(out=tmp_path, overlays=overlays, maps=True, threshold=-1e9,
                                                      batch_size=3, workers=1))
    assert summary.anomalous == 4 and all(r["threshold"] == -1e9 for r in summary.rows)
    for r in summary.rows:
        assert (r["overlay"] is not None) == (overlays == "all")
        anomaly_map = np.load(tmp_path / r["map"])
        assert anomaly_map.dtype == np.float32 and anomaly_map.shape == (r["height"], r["width"])
    if overlays == "all":
        from PIL import Image

        assert Image.open(tmp_path / summary.rows[0]["overlay"]).size == (summary.rows[0]["width"],
                                                                            summary.rows[0]["height"])
    assert (tmp_path / "report.html").is_file()


def test_hostile_file_names_stay_inside_out(detector, inputs, tmp_path):
    weird = tmp_path / "in" / ".." / "in" / "a b" / "..x" / "ü ..png"
    weird.parent.mkdir(parents=True)
    weird.write_bytes(next((inputs / "a").glob("*.jpg")).read_bytes())
    out = tmp_path / "out"
    run_audit(detector, [str(weird)], AuditOptions(out=out, overlays="all", maps=True))
    inside = out.resolve()
    written = [Path(root, f).resolve() for root, _, files in os.walk(out) for f in files]
    assert len(written) >= 6 and all(inside in p.parents for p in written)
    assert set(os.listdir(tmp_path)) == {"in", "out"}


def _fail(*args, **kwargs):
    raise RuntimeError("boom")


@pytest.mark.parametrize("where", ["predict_batch", "sink"])
def test_a_failure_shuts_the_decode_pool_down(detector, inputs, tmp_path, monkeypatch, where):
    if where == "sink":
        monkeypatch.setattr(engine.Sink, "put", _fail)
    else:
        monkeypatch.setattr(engine, "predict_batch", _fail)
    paths, _ = expand_inputs([str(inputs)])
    with pytest.raises(RuntimeError, match="boom") as error:  # the traceback (kept) holds the engine's frames
        run_audit(detector, paths, AuditOptions(out=tmp_path, batch_size=1, workers=2), report=False)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("audit-")]
    assert alive == [] and error.traceback


def test_the_report_thumbnail_boxes_each_region_at_its_scale(detector, tmp_path):
    import dataclasses
    import io

    from PIL import Image

    from anomaly.audit.rows import thumbnail
    from anomaly.detector import Region

    array = np.full((1, 400, 600), 0.5, np.float32)  # a thumbnail of 256 px: scale 256 / 600
    [prediction] = detector.predict_arrays([array])
    boxed = dataclasses.replace(prediction, regions=(Region(bbox=(150, 100, 450, 300), area=60000, peak=0.9),))

    def grey(p):
        return np.asarray(Image.open(io.BytesIO(thumbnail(detector, array, p))).convert("L"), np.float32)

    plain, with_box = grey(prediction), grey(boxed)
    scale = with_box.shape[1] / 600
    x0, y0, x1, y1 = (round(v * scale) for v in (150, 100, 450, 300))
    edge = np.r_[with_box[y0, x0:x1] - plain[y0, x0:x1], with_box[y0:y1, x0] - plain[y0:y1, x0]]
    assert edge.mean() > 40  # white lines (JPEG blurs them a little)
    assert np.abs(with_box[y0 + 10:y1 - 10, x0 + 10:x1 - 10] - plain[y0 + 10:y1 - 10, x0 + 10:x1 - 10]).max() < 12
