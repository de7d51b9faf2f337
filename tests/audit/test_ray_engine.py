"""`--engine ray` on a local Ray instance started here: the same rows and files as the local engine, whatever
the file names."""

import os
import shutil
from types import SimpleNamespace

import pytest

from anomaly.audit import AuditOptions, read_rows, run_audit
from anomaly.audit.ray_engine import model_uri


def test_actors_load_the_version_the_driver_resolved_not_the_alias(detector):
    aliased = SimpleNamespace(source="models:/tiny@champion",
                              info={"uri": "models:/tiny@champion", "pinned": "models:/tiny/3", "version": "3"})
    assert model_uri(aliased) == "models:/tiny/3"
    assert model_uri(detector) == os.path.abspath(detector.source)  # a bundle folder, made absolute


def test_ray_engine_gives_the_local_results(detector, inputs, tmp_path):
    ray = pytest.importorskip("ray")
    paths = [str(p) for p in sorted((inputs / "a").glob("*.jpg"))[:4]]
    odd = os.path.join(os.fsencode(tmp_path), b"\xff\xfe-x.jpg")  # not UTF-8, which Arrow strings must be
    shutil.copy(paths[0], odd)
    paths += [str(inputs / "b" / "rgb.png"), str(inputs / "empty.png"), str(inputs / "b" / "deep16.png"),
              os.fsdecode(odd)]
    options = dict(overlays="all", threshold=detector.calibration.score_p50, batch_size=3)
    local = run_audit(detector, paths, AuditOptions(out=tmp_path / "local", **options), report=False)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_audit(detector, paths, AuditOptions(out=tmp_path / "ray", engine="ray", workers=1, **options))
    finally:
        ray.shutdown()

    rows = read_rows(tmp_path / "ray")
    assert [r["path"] for r in rows] == paths == [r["path"] for r in local.rows]
    for r, ref in zip(rows, local.rows):
        assert r.keys() == ref.keys()
        assert {k: v for k, v in r.items() if k not in ("score", "normalised_score")} == \
               {k: v for k, v in ref.items() if k not in ("score", "normalised_score")}
        if ref["score"] is not None:
            assert r["score"] == pytest.approx(ref["score"], abs=1e-5)
            assert r["normalised_score"] == pytest.approx(ref["normalised_score"], abs=1e-5)
            assert (tmp_path / "ray" / r["overlay"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert remote.errors == 1 and "empty file" in rows[5]["error"]
    assert (tmp_path / "ray" / "report.html").is_file() and "ray scoring" in remote.stages
    assert sorted(p.name for p in (tmp_path / "ray" / "thumbs").iterdir()) == \
           sorted(p.name for p in (tmp_path / "local" / "thumbs").iterdir())
