"""Expand the audit's inputs (files, folders, globs) into one deterministic list of paths, and name
the files written for each input so that no input path can place them outside the output folder."""

from __future__ import annotations

import glob
import hashlib
import os
import re
from pathlib import Path

from anomaly.data.datasets import IMAGE_EXTENSIONS

_GLOB_CHARS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
SURROGATES = re.compile("[\ud800-\udfff]")  # how os.fsdecode keeps the bytes of a name that is not UTF-8


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _folder_images(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursive, hidden files and folders skipped), sorted."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in files if _is_image(Path(f)) and Path(root, f).is_file()]
    return sorted(found)


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[str]]:
    """Files, folders and glob patterns -> (absolute paths, warnings).

    Order is deterministic: inputs in the order given, each folder or glob sorted; a path given
    twice appears once (first place wins). Folders are searched recursively and globs support
    ``**``; both keep only image extensions (``IMAGE_EXTENSIONS``). A file named explicitly is
    always kept, whatever its extension, so a missing or non-image file becomes an error row.
    """
    paths: list[str] = []
    seen: set[str] = set()
    warnings: list[str] = []

    def add(path: Path) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            paths.append(key)

    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = _folder_images(path)
            if not found:
                warnings.append(f"{item}: folder has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        elif _GLOB_CHARS.search(item) and not path.exists():
            found = []
            for match in sorted(glob.glob(str(path), recursive=True)):
                match_path = Path(match)
                if match_path.is_dir():
                    found += _folder_images(match_path)
                elif _is_image(match_path):
                    found.append(match_path)
            if not found:
                warnings.append(f"{item}: pattern matches no images")
        else:
            found = [path]  # a missing or non-image file is reported as an error row, not skipped
        for p in found:
            add(p)
    return paths, warnings


def artifact_name(path: str) -> str:
    """A file name for `path`'s overlay, map and thumbnail: a readable stem plus a hash of the full
    path, e.g. ``exp1_num_4-3f2a9c1b0d``. Only ``[A-Za-z0-9_-]``, never empty, never a path, so
    joining it to a folder cannot leave that folder whatever `path` contains (``..``, ``/``, NUL)."""
    stem = _UNSAFE.sub("_", Path(path).stem).strip("_")[:60] or "image"
    digest = hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{stem}-{digest}"


def readable(text: str) -> str:
    """`text` as valid UTF-8 for CSV, HTML and terminals: a byte of a file name that is not UTF-8 (which
    os.fsdecode keeps as a surrogate U+DC80-U+DCFF) is written ``\\xNN`` as Python's ``backslashreplace``
    writes it, any other lone surrogate ``\\uDXXX``; so ``os.fsdecode(b"\\xff\\xfe-x.jpg")`` reads
    ``\\xff\\xfe-x.jpg``. For display only: results.jsonl keeps the exact name."""

    def escape(match: re.Match) -> str:
        code = ord(match[0])
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

    return SURROGATES.sub(escape, text)
