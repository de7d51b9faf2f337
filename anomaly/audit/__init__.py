"""Batch audits: score files, folders and globs into a results table, overlays and an HTML report.

    paths, _ = expand_inputs(["/data/line3", "/data/line4/**/*.png"])
    summary = run_audit(Detector.load(uri), paths, AuditOptions(out=Path("audits/1120")))

See docs/audit.md for the command line (`anomaly audit`), the outputs, resume and the Ray engine.
"""

from anomaly.audit.engine import AuditOptions, AuditSummary, run_audit
from anomaly.audit.inputs import artifact_name, expand_inputs
from anomaly.audit.results import COLUMNS, ResumeError, ResumeWarning, read_rows

__all__ = ["COLUMNS", "AuditOptions", "AuditSummary", "ResumeError", "ResumeWarning", "artifact_name",
           "expand_inputs", "read_rows", "run_audit"]
