import dataclasses
import json
import os
import stat

import numpy as np
import pytest
import torch

from anomaly.bundle import CALIBRATION, CONFIG, WEIGHTS, load_bundle, save_bundle
from anomaly.calibration import calibrate
from anomaly.config import ModelConfig
from anomaly.models import build_model


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


@pytest.mark.parametrize("seg_depth", [3, 4])
def test_a_draem_bundle_that_holds_only_the_options_given_loads_as_it_was_trained(tmp_path, seg_depth):
    """A bundle whose config holds only the options it was given lacks seg_depth, which its weights fix
    (3 or 4 pooling stages): each must load at the depth it was trained with and score as before."""
    torch.manual_seed(0)
    given = {"crop": 16, "seg_width": 4}
    config = ModelConfig(name="draem", image_size=(32, 32), width=4, depth=2,
                         options={**given, "seg_depth": seg_depth})
    model = build_model(config).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = model.anomaly_map(x)
    calibration = calibrate(np.linspace(0, 1, 8), np.random.default_rng(0).random((8, 32, 32)))
    save_bundle(tmp_path, dataclasses.replace(config, options=given), model.state_dict(), calibration)
    bundle = load_bundle(tmp_path)
    assert bundle.config.options == {**given, "seg_depth": seg_depth}
    with torch.no_grad():
        assert torch.equal(bundle.build_model().anomaly_map(x), expected)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)], ids=["022", "002", "077"])
def test_bundle_files_are_written_readable_as_any_data_file_under_the_umask(trained, tmp_path, umask, mode):
    """weights.safetensors once came out 0600 whatever the umask (safetensors' own writer), so a
    read-only mount served by another user could not read it; every file is now 0666 & ~umask."""
    bundle = load_bundle(trained.bundle_path)
    previous = os.umask(umask)
    try:
        path = save_bundle(tmp_path / "b", bundle.config, bundle.state_dict, bundle.calibration)
    finally:
        os.umask(previous)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()} == dict.fromkeys(
        [CONFIG, WEIGHTS, CALIBRATION], mode)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in trained.bundle_path.iterdir()} == dict.fromkeys(
        [CONFIG, WEIGHTS, CALIBRATION], oct(0o666 & ~previous))  # what `train` wrote in this session
