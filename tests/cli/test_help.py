"""`anomaly <verb> --help`: every option says what it is and what it defaults to."""

import re

import pytest
from typer.testing import CliRunner

from anomaly.cli import app

VERBS = ["train", "evaluate", "calibrate", "audit", "serve", "ui", "export"]


def options(help_text: str) -> dict[str, str]:
    """{declaration: description} of the Options section (click's plain layout: declaration, two or more spaces,
    description, continued on more indented lines)."""
    section = help_text.split("\nOptions:\n", 1)[1]
    found: dict[str, str] = {}
    for line in section.splitlines():
        if line.startswith("  -"):
            last, *description = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            found[last] = " ".join(description)
        elif line.strip():
            found[last] = f"{found[last]} {line.strip()}".strip()
    return found


@pytest.mark.parametrize("verb", VERBS)
def test_every_option_has_a_description_and_its_default(verb):
    result = CliRunner().invoke(app, [verb, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    found = options(result.output)
    assert len(found) > 1
    for declaration, description in found.items():
        assert description, f"{verb} {declaration}: no description"
        assert "<bool>" not in declaration, f"{verb} {declaration}: a flag shows a type"
        if declaration == "--help" or "[required]" in description:
            continue
        bare_flag = "<" not in declaration and "/" not in declaration  # --resume: off unless given
        assert bare_flag or re.search(r"[\[(]default: ", description), f"{verb} {declaration}: no default"
