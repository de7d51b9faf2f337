"""Every `anomaly ...` command shown in README.md and docs/*.md names a real command and real options."""

import re
import shlex
from pathlib import Path

import pytest
import typer

from anomaly.cli import app

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = typer.main.get_command(app).commands


def documented_commands():
    for doc in DOCS:
        in_code = False
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_code = not in_code
                continue
            for match in re.finditer(r"(?:^|&& |`)(anomaly [^`#&|]+)", line if in_code else ""):
                yield pytest.param(match.group(1).strip(), id=f"{doc.name}:{number}")


@pytest.mark.parametrize("command", list(documented_commands()))
def test_documented_command_exists_with_its_options(command):
    words = shlex.split(command.replace("\\", ""))
    assert words[1] in COMMANDS, f"`{command}`: no command {words[1]!r}; commands: {sorted(COMMANDS)}"
    known = {opt for param in COMMANDS[words[1]].params for opt in [*param.opts, *param.secondary_opts]}
    unknown = [w.split("=")[0] for w in words[2:] if w.startswith("--") and w.split("=")[0] not in known]
    assert not unknown, f"`{command}`: unknown options {unknown}"


def test_the_docs_show_every_command():
    shown = {shlex.split(p.values[0])[1] for p in documented_commands()}
    assert set(COMMANDS) <= shown, f"commands never shown in the docs: {sorted(set(COMMANDS) - shown)}"


def test_the_model_quoted_in_docs_architecture_is_the_repositorys():
    """docs/architecture.md shows the smallest model in full: each block that follows a paragraph opening with
    `<path>.py`: is that file as it is now."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    quoted = {}
    for block in re.finditer(r"\n\n```python\n(.*?)```", text, flags=re.S):
        if path := re.match(r"`(anomaly/[\w/]+\.py)`:", text[:block.start()].rsplit("\n\n", 1)[-1]):
            quoted[path.group(1)] = block.group(1)
    assert sorted(quoted) == [f"anomaly/models/vae/{name}.py" for name in ("lightning_model", "loss", "options",
                                                                           "torch_model")]
    for path, code in quoted.items():
        assert code == (ROOT / path).read_text(), f"docs/architecture.md quotes {path} other than it is"
