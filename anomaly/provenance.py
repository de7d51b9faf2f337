"""What a run records about its inputs and code: a fingerprint of the dataset's files and the commit
of the source tree. Plain Python (no mlflow); `anomaly.tracking` tags every run with them."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

import anomaly


def dataset_fingerprint(samples: Sequence[Any]) -> str:
    """16 hex digits of SHA-256 over each sample's path (relative to their common folder), file
    size, label and split: the same files in another folder give the same fingerprint."""
    paths = [Path(s.image).resolve() for s in samples]
    root = Path(os.path.commonpath(paths)) if paths else Path()
    root = root.parent if root.is_file() else root
    lines = sorted(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\t{s.label}\t{s.split}\n"
                   for p, s in zip(paths, samples))
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:16]


def git_commit() -> str:
    """The commit of the source tree the package runs from, "+dirty" when it has local changes."""
    where = Path(anomaly.__file__).parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    return head.stdout.strip() + ("+dirty" if dirty else "")
