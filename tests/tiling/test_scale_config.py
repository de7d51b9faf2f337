"""`scale` in ModelConfig, TrainConfig, YAML and bundles: None keeps resizing to image_size, bad values are named."""

import pytest

from anomaly.config import ModelConfig, TrainConfig


def test_scale_defaults_to_none_and_an_older_config_without_it_loads():
    saved = ModelConfig().to_dict()
    assert saved.pop("scale") is None
    assert ModelConfig.from_dict(saved).scale is None


@pytest.mark.parametrize("bad", [0, -1, 8.5, float("nan"), float("inf"), "1", True, [1.0]])
def test_a_nonsensical_scale_is_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match=r"^scale must be a finite number in \(0, 8.0\]"):
        ModelConfig(scale=bad).check()
    with pytest.raises(ValueError, match=r"^scale must be"):
        TrainConfig(scale=bad)


def test_scale_travels_from_yaml_and_options_to_the_model_config(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("model: ae\nscale: 0.5\nimage-size: 64\n")
    config = TrainConfig.from_yaml(path)
    assert config.model_config(channels=1).scale == 0.5 and config.model_config(1).image_size == (64, 64)
    assert TrainConfig().replace(scale=1.0).model_config(channels=3).check().scale == 1.0
    assert ModelConfig.from_dict({**ModelConfig(scale=2).to_dict()}).scale == 2


def test_anomaly_train_takes_scale_and_the_bundle_keeps_it(tmp_path):
    import json

    from typer.testing import CliRunner

    from anomaly.cli import app
    from tests.tiling.scaled import save_png, texture

    for i in range(4):
        save_png(texture((96, 160), i), tmp_path / f"n{i}.png")
    args = ["train", "--model", "ae", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--scale", "0.5",
            "--image-size", "32", "--epochs", "1", "--width", "4", "--latent-dim", "8", "--accelerator", "cpu",
            "--no-tracking", "--val-fraction", "0.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["scale"] == 0.5 and config["image_size"] == [32, 32]
    refused = CliRunner().invoke(app, [*args[:-2], "--scale", "0"])
    assert refused.exit_code != 0 and "scale must be a finite number in (0, 8.0], got 0" in refused.output


def test_scale_auto_brings_the_median_short_side_to_the_crop():
    import numpy as np

    from anomaly.tiling import scale_for

    rng = np.random.default_rng(0)
    for _ in range(20):
        shapes = [tuple(int(v) for v in rng.integers(40, 900, 2)) for _ in range(int(rng.integers(1, 30)) * 2 + 1)]
        tile = tuple(int(v) for v in rng.integers(16, 300, 2))
        median = np.median([min(shape) for shape in shapes])  # an odd count: numpy's median is one of them
        assert scale_for(shapes, tile) == pytest.approx(min(8.0, min(tile) / median), rel=5e-3)
    assert scale_for([(208, 512)] * 4, (128, 128)) == 0.615
    assert scale_for([(10, 10)], (128, 128)) == 8.0  # capped
    with pytest.raises(ValueError, match="no images"):
        scale_for([], (128, 128))


@pytest.mark.parametrize("given, expected", [("auto", "auto"), ("0.5", 0.5), (2, 2)])
def test_train_config_takes_auto_or_a_number_for_scale(given, expected):
    assert TrainConfig().replace(scale=given).scale == expected


def test_a_scale_that_is_neither_auto_nor_a_number_is_refused():
    with pytest.raises(ValueError, match=r"^scale must be a number in \(0, 8.0\] or 'auto', got \"half\""):
        TrainConfig().replace(scale="half")


def test_anomaly_train_scale_auto_keeps_the_chosen_factor_in_the_bundle(tmp_path):
    import json

    from typer.testing import CliRunner

    from anomaly.cli import app
    from tests.tiling.scaled import save_png, texture

    for i, shape in enumerate([(96, 160), (96, 160), (120, 100)]):  # short sides 96, 96, 100: median 96
        save_png(texture(shape, i), tmp_path / f"n{i}.png")
    result = CliRunner().invoke(app, [
        "train", "--model", "ae", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--scale", "auto",
        "--image-size", "32", "--epochs", "1", "--width", "4", "--latent-dim", "8", "--accelerator", "cpu",
        "--no-tracking", "--val-fraction", "0.4"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["scale"] == 0.333  # 32 / 96
    assert "scale auto: 0.333" in result.output
