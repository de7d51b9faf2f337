import json

import pytest
import torch

from anomaly.bundle import CALIBRATION, CONFIG, WEIGHTS, load_bundle


def test_bundle_is_plain_data_and_round_trips(trained):
    path = trained.bundle_path
    assert sorted(p.name for p in path.iterdir()) == sorted([CONFIG, WEIGHTS, CALIBRATION])
    config = json.loads((path / CONFIG).read_text())
    assert config["name"] == "ssim-ae" and config["image_size"] == [64, 64] and config["channels"] == 1
    # safetensors: an 8-byte little-endian header length, then a JSON header; no pickle opcodes
    raw = (path / WEIGHTS).read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert "net.encoder.fc.weight" in header
    assert not raw.startswith(b"\x80") and b"PK\x03\x04" not in raw[:4]
    bundle = load_bundle(path)
    assert bundle.config == trained.model_config
    assert bundle.calibration == trained.calibration
    model = bundle.build_model()
    assert not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, bundle.state_dict[name])


def test_loading_a_folder_that_is_not_a_bundle_says_what_is_missing(tmp_path):
    (tmp_path / CONFIG).write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing weights.safetensors, calibration.json"):
        load_bundle(tmp_path)
