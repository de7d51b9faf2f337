"""The audit's results table: `results.jsonl` (the source of truth) and `results.csv`, one row per
input, appended and flushed as each row is produced, and resumable after a crash or Ctrl-C.

After a kill the JSONL file may end in a half-written line and the CSV file may be one row ahead or
behind; after worse damage any line may be garbage. `ResultsWriter(resume=True)` keeps every sound
JSONL row (first occurrence per path), warns about each line it drops (its image is audited again),
rewrites both files from the rows kept and appends from there; `finish` puts the rows back in input
order. Nothing done is lost or duplicated, and the CSV is never read.

File names that are not UTF-8 (os.fsdecode's surrogates) stay exact in the JSONL (as ``\\udcNN``
escapes, which json.loads turns back into the same name) and are written readably in the CSV
(`inputs.readable`), so both files are valid UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

from anomaly.audit.inputs import SURROGATES, readable

COLUMNS = ("path", "width", "height", "score", "normalised_score", "threshold", "verdict", "regions",
           "largest_region_area", "model_name", "model_version", "overlay", "map", "error")
VERDICTS = ("anomalous", "normal", "error")
RESULTS_CSV, RESULTS_JSONL, AUDIT_META = "results.csv", "results.jsonl", "audit.json"
_TYPES = {"path": str, "verdict": str, "model_name": str, "model_version": str, "overlay": str, "map": str,
          "error": str, "width": int, "height": int, "regions": int, "largest_region_area": int,
          "score": float, "normalised_score": float, "threshold": float}
_SCORED = ("width", "height", "score", "normalised_score", "threshold")  # never empty in a scored row


class ResumeError(ValueError):
    """The output folder holds an audit that cannot be continued as asked."""


class ResumeWarning(UserWarning):
    """Part of an audit being resumed was damaged and is redone."""


def _problem(row: Any) -> str | None:
    """Why `row` (one parsed JSONL line) is not a results row, or None when it is one."""
    if not isinstance(row, dict):
        return f"not a JSON object but {json.dumps(row)[:40]}"
    if not isinstance(row.get("path"), str) or not row["path"]:
        return "no path"
    if row.get("verdict") not in VERDICTS:
        return f"verdict {row.get('verdict')!r} is not one of {', '.join(VERDICTS)}"
    for column, kind in _TYPES.items():
        value = row.get(column)
        expected = (int, float) if kind is float else kind
        if value is not None and (isinstance(value, bool) or not isinstance(value, expected)):
            return f"{column} is {value!r}, not a {kind.__name__}"
    if row["verdict"] != "error" and (missing := [c for c in _SCORED if row.get(c) is None]):
        return f"a {row['verdict']} row without {', '.join(missing)}"
    return None


def read_rows(out: str | Path) -> list[dict[str, Any]]:
    """Every sound row of `out/results.jsonl`, first occurrence per path, in file order. Each line
    dropped (cut short by a kill, not UTF-8, not JSON, not a results row, a repeated path) is
    reported as a ResumeWarning naming the file and line."""
    path = Path(out) / RESULTS_JSONL
    if not path.exists():
        return []
    rows: dict[str, dict[str, Any]] = {}
    first: dict[str, int] = {}

    def drop(number: int, problem: str, outcome: str = "its image is audited again") -> None:
        warnings.warn(f"{readable(str(path))} line {number}: {readable(problem)}; dropped, {outcome}",
                      ResumeWarning, stacklevel=3)

    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n"):  # only ever the last line
                drop(number, "cut short (the audit stopped while writing it)")
                break
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as error:
                drop(number, f"not UTF-8 ({error.reason} at byte {error.start + 1})")
            except json.JSONDecodeError as error:
                drop(number, f"not JSON ({error.msg.removesuffix(' at')} at column {error.colno})")
            except RecursionError:
                drop(number, "not JSON (nested too deep)")
            else:
                if problem := _problem(row):
                    drop(number, problem)
                elif row["path"] in rows:
                    drop(number, f"{row['path']} again", f"the row at line {first[row['path']]} is kept")
                else:
                    rows[row["path"]], first[row["path"]] = {c: row.get(c) for c in COLUMNS}, number
    return list(rows.values())


def _csv_line(row: dict[str, Any]) -> str:
    def cell(value: Any) -> Any:
        return "" if value is None else repr(value) if isinstance(value, float) else \
            readable(value) if isinstance(value, str) else value

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([cell(row.get(c)) for c in COLUMNS])
    return buffer.getvalue()


def _jsonl_line(row: dict[str, Any]) -> str:
    text = json.dumps({c: row.get(c) for c in COLUMNS}, ensure_ascii=False)
    return SURROGATES.sub(lambda m: f"\\u{ord(m[0]):04x}", text) + "\n"  # surrogates only occur inside strings


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _stored_meta(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The model version and threshold the audit in `path.parent` was made with: `audit.json`, or when
    that is missing or damaged, the ones its rows carry (those all rows agree on)."""
    try:
        stored = json.loads(path.read_bytes())
        if isinstance(stored, dict):
            return stored
        why = f"not a JSON object but {json.dumps(stored)[:40]}"
    except FileNotFoundError:
        why = ""
    except (OSError, ValueError, RecursionError) as error:
        why = str(error)
    if why:
        warnings.warn(f"{readable(str(path))} is damaged ({why}); checking the model version and threshold "
                      "against the results rows instead, and writing it again", ResumeWarning, stacklevel=3)
    versions = {_comparable("model_version", r["model_version"]) for r in rows}
    thresholds = {r["threshold"] for r in rows if r["verdict"] != "error"}
    return ({"model_version": versions.pop()} if len(versions) == 1 else {}) | \
           ({"threshold": thresholds.pop()} if len(thresholds) == 1 else {})


def _comparable(key: str, value: Any) -> Any:
    """A model version as the rows write it (None -> "", 3 -> "3"); other values as they are."""
    return ("" if value is None else str(value)) if key == "model_version" else value


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
        self.rows: list[dict[str, Any]] = []  # every row in the files: resumed ones, then those written
        if (jsonl_path.exists() or csv_path.exists()) and not overwrite:
            if not resume:
                raise ResumeError(f"{readable(str(self.out))} already holds audit results; pass --resume to "
                                  "continue that audit, --overwrite to start again, or choose another --out")
            self.rows = read_rows(self.out)
            old = _stored_meta(meta_path, self.rows)
            changed = [k for k in meta if k in old and _comparable(k, old[k]) != _comparable(k, meta[k])]
            if changed:
                raise ResumeError(f"cannot resume {readable(str(self.out))}: {', '.join(changed)} changed "
                                  f"({', '.join(f'{old[k]!r} -> {meta[k]!r}' for k in changed)}); "
                                  "audit with the same model and threshold, or choose another --out")
        _replace(meta_path, json.dumps(meta, indent=1))
        self._rewrite(self.rows)
        self.done = {row["path"] for row in self.rows}
        self._csv = csv_path.open("a", encoding="utf-8", newline="")
        self._jsonl = jsonl_path.open("a", encoding="utf-8")

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        _replace(self.out / RESULTS_JSONL, "".join(map(_jsonl_line, rows)))
        _replace(self.out / RESULTS_CSV, ",".join(COLUMNS) + "\n" + "".join(map(_csv_line, rows)))

    def write(self, row: dict[str, Any]) -> None:
        """Append one row to both files and flush them (a killed process keeps every written row)."""
        self._jsonl.write(_jsonl_line(row))
        self._jsonl.flush()
        self._csv.write(_csv_line(row))
        self._csv.flush()
        self.rows.append(row)

    def finish(self, paths: list[str]) -> list[dict[str, Any]]:
        """Close the files, rewritten if needed so that rows follow `paths` (rows of other paths, kept
        from the audit being resumed, come last in their order). Returns the rows in that order."""
        self.close()
        rank = {p: i for i, p in enumerate(paths)}
        ordered = sorted(self.rows, key=lambda r: rank.get(r["path"], len(rank)))
        if [r["path"] for r in ordered] != [r["path"] for r in self.rows]:
            self._rewrite(ordered)
        return ordered

    def close(self) -> None:
        self._jsonl.close()
        self._csv.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
