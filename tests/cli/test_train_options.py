"""`anomaly train`'s options are TrainConfig's fields, their help and defaults generated from it and from each
model's options dataclass."""

import dataclasses
import re

from typer.testing import CliRunner

from anomaly.cli import app
from anomaly.config import TrainConfig
from anomaly.models import OPTIONS, option_defaults


def help_text() -> str:
    result = CliRunner().invoke(app, ["train", "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_every_config_field_is_an_option_with_its_default():
    text = help_text()
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("options", "extra"):
            continue
        flag = f"--{f.name.replace('_', '-')}"
        assert re.search(rf"{flag}\b", text), flag
        if f.default not in ("", None, dataclasses.MISSING) and "(default:" not in f.metadata["help"]:
            assert f"{f.metadata['help']} (default: {f.default})" in text, flag
    assert "--extra" not in text


def test_option_help_lists_each_models_own_options_at_their_defaults():
    text = help_text()
    assert "--option" in text
    for name in OPTIONS:
        for key, value in option_defaults(name).items():
            assert f"{key}={value!r}" in text, (name, key)
    assert "stem=" not in text and "p_line=" not in text  # measured and not kept: not options
