"""Results files: append + flush per row, and resume after a torn write without loss or duplicates."""

import csv
import json

import pytest

from anomaly.audit import COLUMNS, ResumeError, read_rows
from anomaly.audit.results import ResultsWriter, ResumeWarning

META = {"model_uri": "m", "model_version": None, "threshold": 0.5}


def row(i, **extra):
    return {"path": f"/p/{i}.png", "width": 4, "height": 3, "score": i / 10, "normalised_score": 0.25,
            "threshold": 0.5, "verdict": "normal", "regions": 0, **extra}


def test_rows_are_flushed_as_written(tmp_path):
    writer = ResultsWriter(tmp_path, META)
    writer.write(row(1, error=None))
    # not closed: another reader already sees the row in both files
    assert read_rows(tmp_path) == [{c: row(1).get(c) for c in COLUMNS}]
    assert list(csv.DictReader((tmp_path / "results.csv").open()))[0]["score"] == "0.1"
    writer.close()


def test_resume_drops_torn_line_and_duplicates_and_rewrites_csv(tmp_path):
    with ResultsWriter(tmp_path, META) as writer:
        for i in range(3):
            writer.write(row(i))
    with (tmp_path / "results.jsonl").open("a") as f:
        f.write(json.dumps({c: row(1).get(c) for c in COLUMNS}) + "\n")  # a duplicate
        f.write('{"path": "/p/9.png", "sco')  # killed mid-line
    with (tmp_path / "results.csv").open("a") as f:
        f.write("/p/9.png,1,2\n/p/9.png,1")  # csv ahead of jsonl, torn too
    with pytest.warns(ResumeWarning) as caught, ResultsWriter(tmp_path, META, resume=True) as writer:
        assert writer.done == {f"/p/{i}.png" for i in range(3)}
        writer.write(row(9))
    assert [str(w.message).split(": ", 1)[1] for w in caught] == [
        "/p/1.png again; dropped, the row at line 2 is kept",
        "cut short (the audit stopped while writing it); dropped, its image is audited again"]
    paths = [r["path"] for r in read_rows(tmp_path)]
    assert paths == ["/p/0.png", "/p/1.png", "/p/2.png", "/p/9.png"]
    with (tmp_path / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["path"] for r in table] == paths and list(table[0]) == list(COLUMNS)


def test_refuses_to_mix_audits(tmp_path):
    ResultsWriter(tmp_path, META).close()
    with pytest.raises(ResumeError, match="--resume"):
        ResultsWriter(tmp_path, META)
    with pytest.raises(ResumeError, match="threshold changed"):
        ResultsWriter(tmp_path, META | {"threshold": 0.7}, resume=True)
    ResultsWriter(tmp_path, META | {"threshold": 0.7}, overwrite=True).close()
    assert read_rows(tmp_path) == []


def test_without_a_sound_audit_json_the_rows_say_what_scored_them(tmp_path):
    with ResultsWriter(tmp_path, META) as writer:
        writer.write(row(1, model_version=""))
        writer.write(row(2, verdict="error", score=None, threshold=None, error="bad"))
    (tmp_path / "audit.json").write_text('{"model_uri": "m", "thr')  # cut
    with pytest.warns(ResumeWarning, match="audit.json is damaged"), \
            pytest.raises(ResumeError, match=r"threshold changed \(0.5 -> 0.7\)"):
        ResultsWriter(tmp_path, META | {"threshold": 0.7}, resume=True)
    (tmp_path / "audit.json").unlink()  # missing: the same check, silently
    with pytest.raises(ResumeError, match=r"model_version changed \('' -> '3'\)"):
        ResultsWriter(tmp_path, META | {"model_version": "3"}, resume=True)
    with ResultsWriter(tmp_path, META, resume=True) as writer:
        assert writer.done == {"/p/1.png", "/p/2.png"}
    assert json.loads((tmp_path / "audit.json").read_text()) == META
