"""`--resume` after damage to results.jsonl, results.csv or audit.json: each damaged line is dropped with
a warning naming the file and line, its image is audited again in its place, and the outputs end up
byte for byte those of a clean audit (no row lost, none duplicated, same order, same scores)."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from anomaly.cli import app
from tests.audit.conftest import sample_images

NAMES = ("a.jpg", "b-é.jpg", "c.jpg", "d.jpg", "notes.png", "z-ñandú.jpg")  # sorted; two names with 2-byte UTF-8


def audit(folder, model, out, *extra):
    """Batches of one image: a score then does not depend on which images share its batch (float32 sums
    in another order differ by an ulp, 3e-8), so a resumed audit can be compared bit for bit."""
    return CliRunner().invoke(app, ["audit", str(folder), "--model", str(model), "--out", str(out), "--batch-size",
                                    "1", "--overlays", "all", "--no-progress", *extra], catch_exceptions=False)


@pytest.fixture(scope="module")
def clean(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("damage-in")
    for name, image in zip(NAMES, sample_images()):
        shutil.copy(image, folder / name)
    (folder / "notes.png").write_text("not an image\n")  # an error row: exit 2, and a row without scores
    out = tmp_path_factory.mktemp("damage") / "clean"
    result = audit(folder, trained.bundle_path, out)
    assert result.exit_code == 2, result.output
    return folder, out


def lines(out) -> list[bytes]:
    return (out / "results.jsonl").read_bytes().split(b"\n")[:-1]


def write(out, rows: list[bytes], torn: bytes = b"") -> None:
    (out / "results.jsonl").write_bytes(b"".join(row + b"\n" for row in rows) + torn)


def replace_line(out, number: int, new: bytes) -> None:
    rows = lines(out)
    rows[number - 1] = new
    write(out, rows)


def cut_in_utf8(line: bytes) -> bytes:
    """`line` cut after the first byte of its first multi-byte character."""
    return line[:next(i for i, byte in enumerate(line) if byte >= 0xC0) + 1]


def without(out, number: int, key: str, **changes) -> bytes:
    row = json.loads(lines(out)[number - 1])
    row.pop(key, None)
    return json.dumps(row | changes).encode()


# name: (damage, warning expected in the output, images audited again)
DAMAGE = {
    "last line cut inside a UTF-8 character": (
        lambda out: write(out, lines(out)[:5], cut_in_utf8(lines(out)[5])), "results.jsonl line 6: cut short", 1),
    "line cut inside a UTF-8 character mid-file": (
        lambda out: replace_line(out, 2, cut_in_utf8(lines(out)[1])), "results.jsonl line 2: not UTF-8", 1),
    "null line": (lambda out: replace_line(out, 3, b"null"), "results.jsonl line 3: not a JSON object but null", 1),
    "[1,2] line": (lambda out: replace_line(out, 4, b"[1,2]"), "results.jsonl line 4: not a JSON object but [1, 2]", 1),
    "line without path": (lambda out: replace_line(out, 1, without(out, 1, "path")),
                          "results.jsonl line 1: no path", 1),
    "score that is not a number": (lambda out: replace_line(out, 2, without(out, 2, "score", score="high")),
                                   "results.jsonl line 2: score is 'high', not a float", 1),
    "garbage line mid-file": (lambda out: replace_line(out, 3, b'{"path": "/x", garb'),
                              "results.jsonl line 3: not JSON", 1),
    "garbage nested too deep for a parser": (lambda out: replace_line(out, 5, b"[" * 100_000),
                                              "results.jsonl line 5: not JSON (nested too deep)", 1),
    "two lines swapped for one garbage line": (
        lambda out: write(out, [*lines(out)[:2], b"\x00\xff\xfe", *lines(out)[4:]]),
        "results.jsonl line 3: not UTF-8", 2),
    "audit.json cut": (lambda out: (out / "audit.json").write_bytes((out / "audit.json").read_bytes()[:25]),
                       "audit.json is damaged", 0),
    "audit.json a list": (lambda out: (out / "audit.json").write_text("[1, 2]"), "audit.json is damaged", 0),
    "results.csv cut inside a UTF-8 character, then garbage": (
        lambda out: (out / "results.csv").write_bytes(cut_in_utf8((out / "results.csv").read_bytes()) + b"\xff,\n,,"),
        "", 0),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_resume_after_damage_loses_and_duplicates_nothing(clean, trained, tmp_path, case):
    folder, reference = clean
    damage, warning, redone = DAMAGE[case]
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    damage(out)

    result = audit(folder, trained.bundle_path, out, "--resume")
    assert result.exit_code == 2, result.output  # the clean audit's code: notes.png failed
    assert f"already audited, {redone} to go" in result.output and "Traceback" not in result.output

    paths = [json.loads(line)["path"] for line in lines(out)]
    clean_paths = [json.loads(line)["path"] for line in lines(reference)]
    lost, duplicated = len(set(clean_paths) - set(paths)), len(paths) - len(set(paths))
    assert (lost, duplicated) == (0, 0) and paths == clean_paths
    # same order, same scores (bit for bit), same everything: the files are the clean audit's
    for name in ("results.jsonl", "results.csv", "audit.json"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert warning in result.output


def test_results_csv_alone_is_still_an_audit(clean, trained, tmp_path):
    """With results.jsonl gone, the CSV left is not overwritten without --resume; --resume audits again."""
    folder, reference = clean
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / "results.jsonl").unlink()
    result = audit(folder, trained.bundle_path, out)
    assert result.exit_code == 2 and "already holds audit results" in result.output
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert audit(folder, trained.bundle_path, out, "--resume").exit_code == 2
    for name in ("results.jsonl", "results.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
