"""The audit's results table: `results.jsonl` (the source of truth) and `results.csv`, one row per
input, appended and flushed as each row is produced, and resumable after a crash or Ctrl-C.

After a kill the JSONL file may end in a half-written line and the CSV file may be one row ahead or
behind; `ResultsWriter(resume=True)` keeps every complete JSONL row (first occurrence per path),
rewrites both files from them, and appends from there: nothing done is lost or duplicated.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

COLUMNS = ("path", "width", "height", "score", "normalised_score", "threshold", "verdict", "regions",
           "largest_region_area", "model_name", "model_version", "overlay", "map", "error")
RESULTS_CSV, RESULTS_JSONL, AUDIT_META = "results.csv", "results.jsonl", "audit.json"


class ResumeError(ValueError):
    """The output folder holds an audit that cannot be continued as asked."""


def read_rows(out: str | Path) -> list[dict[str, Any]]:
    """Every complete row of `out/results.jsonl`, first occurrence per path, in file order.
    A torn last line (the process was killed mid-write) is dropped."""
    path = Path(out) / RESULTS_JSONL
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # torn write: the process died inside this line
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows.setdefault(row["path"], row)
    return list(rows.values())


def _csv_line(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        ["" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float) else row[c] for c in COLUMNS])
    return buffer.getvalue()


def _jsonl_line(row: dict[str, Any]) -> str:
    return json.dumps({c: row.get(c) for c in COLUMNS}, ensure_ascii=False) + "\n"


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class ResultsWriter:
    """Append rows to both results files, flushing each row.

    meta: what must match to resume (model uri/version, threshold); saved as `audit.json`.
    resume=False refuses an output folder that already has results (pass overwrite=True to start
    afresh); resume=True keeps the rows already written and exposes their paths as `done`.
    """

    def __init__(self, out: str | Path, meta: dict[str, Any], *, resume: bool = False,
                 overwrite: bool = False) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        csv_path, jsonl_path, meta_path = (self.out / n for n in (RESULTS_CSV, RESULTS_JSONL, AUDIT_META))
        rows: list[dict[str, Any]] = []
        if jsonl_path.exists() and not overwrite:
            if not resume:
                raise ResumeError(f"{self.out} already holds audit results; pass --resume to continue that "
                                  "audit, --overwrite to start again, or choose another --out")
            old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            changed = [k for k in meta if k in old and old[k] != meta[k]]
            if changed:
                raise ResumeError(f"cannot resume {self.out}: {', '.join(changed)} changed "
                                  f"({', '.join(f'{old[k]!r} -> {meta[k]!r}' for k in changed)}); "
                                  "audit with the same model and threshold, or choose another --out")
            rows = read_rows(self.out)
        _replace(meta_path, json.dumps(meta, indent=1))
        _replace(jsonl_path, "".join(map(_jsonl_line, rows)))
        _replace(csv_path, ",".join(COLUMNS) + "\n" + "".join(map(_csv_line, rows)))
        self.done = {row["path"] for row in rows}
        self.previous = rows
        self._csv = csv_path.open("a", encoding="utf-8", newline="")
        self._jsonl = jsonl_path.open("a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        """Append one row to both files and flush them (a killed process keeps every written row)."""
        self._jsonl.write(_jsonl_line(row))
        self._jsonl.flush()
        self._csv.write(_csv_line(row))
        self._csv.flush()

    def close(self) -> None:
        self._jsonl.close()
        self._csv.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
