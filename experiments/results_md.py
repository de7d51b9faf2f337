"""Write a benchmark's section into experiments/RESULTS.md (between its own markers), with provenance."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=RESULTS.parent).stdout.strip()


# The code a benchmark ran is the code at its start (commits made while it runs do not count);
# RESULTS.md itself, which every benchmark writes, does not make the tree "uncommitted".
COMMIT = _git("rev-parse", "--short", "HEAD") + (" (+ uncommitted changes)" if _git(
    "status", "--porcelain", "--untracked-files=no", "--", ":(top)", f":(top,exclude)experiments/{RESULTS.name}") else "")
STARTED = datetime.date.today().isoformat()


def provenance() -> str:
    import torch

    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, " + (
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
    command = "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    return (f"- command: `{command}`\n- machine: {machine}\n"
            f"- date: {STARTED}\n- commit: {COMMIT}\n")


def write_section(name: str, body: str) -> None:
    """Replace (or append) the block between `<!-- name:start -->` and `<!-- name:end -->`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{provenance()}\n{body.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Results\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + f"\n\n{block}\n"
    RESULTS.write_text(text)
