"""Bad training settings fail before the first epoch, with a message naming the option."""

import time

import pytest

from anomaly.config import TrainConfig
from anomaly.training import train
from tests.conftest import TINY, sample_subset


@pytest.mark.parametrize("overrides,message", [
    ({"fpr": 1.5}, "fpr must be in \\(0, 1\\)"),
    ({"pixel_fpr": 0.0}, "pixel-fpr must be in \\(0, 1\\)"),
    ({"val_fraction": 0.0}, "val-fraction must be in \\(0, 1\\)"),
    ({"score_reduction": "mean"}, "score-reduction must be 'max' or 'topk'"),
    ({"smoothing_sigma": -1.0}, "smoothing-sigma must be >= 0 \\(0: no smoothing\\), got -1.0"),
    ({"channels": 2}, "channels must be 1, 3 or 0"),
    ({"epochs": -1}, "epochs must be >= 1"),
    ({"precision": "16"}, "precision must be one of"),
])
def test_config_rejects_out_of_range_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)
    with pytest.raises(ValueError, match=message):  # also through replace(), as the CLI and YAML use it
        TrainConfig().replace(**overrides)


@pytest.mark.parametrize("overrides,message", [
    ({"residual": "bogus"}, "unknown residual kind 'bogus'"),
    ({"image_size": (60, 64)}, "not divisible by 2\\*\\*depth"),
    ({"model": "draem", "residual": "segmentation", "image_size": (64, 64), "options": {"crop": 20}},
     "crop 20 must be a multiple of"),
    ({"model": "draem", "residual": "segmentation", "image_size": (48, 64), "options": {"crop": 32, "seg_depth": 5}},
     "draem image size 48x64 must be a multiple of 32 on each side"),
])
def test_model_settings_fail_before_any_training(tmp_path, overrides, message):
    config = TrainConfig(out=str(tmp_path / "b"), **{**TINY, "epochs": 50, **overrides})
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        train(config, progress=False)
    assert time.perf_counter() - start < 30  # 50 epochs would take minutes: it failed before training
    assert not (tmp_path / "b").exists()


def test_too_few_normals_to_calibrate_is_named(tmp_path):
    data = sample_subset(tmp_path / "one.csv", 1, 1, 1)
    with pytest.raises(ValueError, match="no held-out normal images to calibrate on: 1 training normal"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "b"), **TINY), progress=False)


def test_a_broken_yaml_config_is_a_clear_cli_error(tmp_path):
    from typer.testing import CliRunner

    from anomaly.cli import app

    config = tmp_path / "bad.yaml"
    config.write_text("epochs: [3\n")
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "error:" in result.output and "while parsing" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command, shown", [
    ("train", ["(default: runs/latest)", "(default: the model's, docs/models.md)", "(default: max)"]),
    ("audit", ["(default: audits/<date-time>)", "(default: the calibrated one)"])])
def test_help_shows_the_defaults(command, shown):
    """Square brackets in a help text are Rich markup and vanish: the defaults must be in parentheses."""
    from typer.testing import CliRunner

    from anomaly.cli import app

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    for text in shown:
        assert text in result.output, text
