"""Input expansion (files, folders, globs; order; duplicates) and output names that stay inside --out."""

import os
from pathlib import Path

from anomaly.audit import artifact_name, expand_inputs


def test_folders_are_recursive_sorted_and_keep_only_images(inputs):
    paths, warnings = expand_inputs([str(inputs)])
    assert not warnings
    assert paths == sorted(paths) and all(os.path.isabs(p) for p in paths)
    names = {Path(p).name for p in paths}
    assert {"rgb.png", "deep16.png", "empty.png", "notes.png", "truncated.jpg"} <= names  # by extension
    assert len(paths) == 20 + 5


def test_globs_files_order_and_duplicates(inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(inputs)
    (tmp_path / "readme.txt").write_text("x")
    paths, warnings = expand_inputs(["b/rgb.png", "a/*.jpg", "a", "**/*.png", str(tmp_path / "readme.txt"),
                                     "missing.jpg", "nothing/*.png", str(tmp_path)])
    assert paths[0] == str(inputs / "b" / "rgb.png")
    a = sorted(str(p) for p in (inputs / "a").glob("*.jpg"))
    assert paths[1:1 + len(a)] == a  # the folder "a" adds nothing new
    assert len(paths) == len(set(paths))
    assert str(inputs / "b" / "deep16.png") in paths and str(inputs / "empty.png") in paths  # ** recurses
    assert str(tmp_path / "readme.txt") in paths  # named explicitly: kept, becomes an error row
    assert str(inputs / "missing.jpg") in paths
    assert any("nothing/*.png" in w for w in warnings) and any("no images" in w for w in warnings)


def test_artifact_names_cannot_escape(tmp_path):
    hostile = ["../../etc/passwd.png", "/abs/../x.png", "a/b/..png", "..", "con:\\x.png", "x\x00y.png",
               "/data/a b/ü.png", "/" + "n" * 400 + ".png", ".hidden.png", ""]
    names = [artifact_name(p) for p in hostile]
    assert len(set(names)) == len(names)  # distinct paths, distinct names
    out = tmp_path / "out"
    for name in names:
        target = (out / "overlays" / f"{name}.png").resolve()
        assert target.parent == (out / "overlays").resolve() and len(name) < 80
    assert artifact_name("/x/y/part-7.png").startswith("part-7-")


def test_an_audit_of_the_bundled_sample_sees_its_images_not_their_masks():
    import csv

    from tests.conftest import SAMPLE_DIR, SAMPLE_MANIFEST

    with open(SAMPLE_MANIFEST) as f:
        rows = list(csv.DictReader(f))
    paths, warnings = expand_inputs([str(SAMPLE_DIR)])
    assert not warnings and any(r["mask"] for r in rows)
    assert sorted(paths) == sorted(os.path.abspath(SAMPLE_DIR / r["image"]) for r in rows)
