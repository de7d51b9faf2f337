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
