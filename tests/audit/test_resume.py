"""Kill `anomaly audit` mid-run (Ctrl-C, then SIGKILL), resume, and compare with a clean run:
every input exactly once (a file name that is not UTF-8 included), same scores, the files consistent."""

import csv
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from anomaly.audit import AuditOptions, expand_inputs, read_rows, run_audit
from anomaly.audit.inputs import readable
from tests.audit.conftest import make_inputs, sample_images


def lines(path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal, whatever disposition the test runner's process passes on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "anomaly", "audit", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def interrupt_after(proc, results, rows: int, sig: int) -> int:
    """Send `sig` once `results` has more than `rows` lines; return the lines seen at that moment."""
    deadline = time.monotonic() + 120
    while lines(results) < rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, f"the audit ended before it could be interrupted: {proc.communicate()}"
    seen = lines(results)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return seen


def test_kill_and_resume_loses_and_duplicates_nothing(detector, trained, tmp_path):
    folder = make_inputs(tmp_path / "in", n=200)  # 200 JPEGs + 2 PNGs + 3 broken files: ample time to interrupt
    shutil.copy(sample_images()[0], os.path.join(os.fsencode(folder / "b"), b"\xff\xfe-x.jpg"))  # not UTF-8
    paths, _ = expand_inputs([str(folder)])
    clean = {r["path"]: r for r in run_audit(detector, paths, AuditOptions(out=tmp_path / "clean"), report=False).rows}
    out = tmp_path / "out"
    args = [str(folder), "--model", str(trained.bundle_path), "--out", str(out), "--batch-size", "2",
            "--workers", "1", "--overlays", "all", "--no-progress"]

    first = start(args, tmp_path)
    seen = interrupt_after(first, out / "results.jsonl", 4, signal.SIGINT)
    assert first.returncode == 130, (f"rows when interrupted: {seen}, after: {lines(out / 'results.jsonl')}, "
                                     f"parent's SIGINT handler: {signal.getsignal(signal.SIGINT)}")
    after_ctrl_c = len(read_rows(out))
    assert 4 <= after_ctrl_c < len(paths)

    second = start([*args, "--resume"], tmp_path)
    interrupt_after(second, out / "results.jsonl", after_ctrl_c + 6, signal.SIGKILL)
    assert second.returncode == -signal.SIGKILL
    assert after_ctrl_c < len(read_rows(out)) < len(paths)

    third = subprocess.run([sys.executable, "-m", "anomaly", "audit", *args, "--resume"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 2, third.stderr  # the broken files
    assert "resuming" in third.stdout

    raw = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["path"] for r in raw) == sorted(paths)  # exactly once each, no torn lines left
    with (out / "results.csv").open() as f:
        assert [r["path"] for r in csv.DictReader(f)] == [readable(r["path"]) for r in raw]
    for row in raw:
        reference = clean[row["path"]]
        if reference["score"] is not None:
            assert row["score"] == pytest.approx(reference["score"], abs=1e-5)
            if abs(reference["score"] - reference["threshold"]) > 1e-5:  # batches of 2 vs 16 round differently
                assert row["verdict"] == reference["verdict"]
            assert (out / row["overlay"]).is_file()
        else:
            assert row["error"] == reference["error"] and row["verdict"] == reference["verdict"]
    report = (out / "report.html").read_text()
    assert all(f'data-path="{html.escape(readable(p))}"' in report for p in paths)
