"""Malformed model files: each bad value is refused by `Detector.load` with a ValueError naming the
file and the field (or tensor), before anything is allocated; the untouched bundle loads and
scores exactly as a model rebuilt from its files by hand."""

from __future__ import annotations

import dataclasses
import json
import math
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from anomaly.bundle import CALIBRATION, CONFIG, WEIGHTS, save_bundle
from anomaly.calibration import calibrate
from anomaly.config import ModelConfig, TrainConfig
from anomaly.data import decode_image, resize
from anomaly.backends import score_images
from anomaly.detector import Detector
from anomaly.models import build_model

NAN, INF = math.nan, math.inf

CONFIG_CASES = [  # (field, value, message after "config.json: ")
    ("name", "nope", 'name must be one of "ae", .*"vae", got "nope"'),
    ("name", 3, "name must be a string, got 3"),
    ("image_size", [2048, 2048], r"image_size must be \[height, width\], two integers in \[1, 4096\] with height \* "
                                 r"width <= 1048576 \(1024x1024\), got \[2048, 2048\]"),
    ("image_size", [8192, 16], r"image_size must be .* got \[8192, 16\]"),
    ("image_size", [64, 0], r"image_size must be .* got \[64, 0\]"),
    ("image_size", [64, 64.5], r"image_size must be .* got \[64, 64.5\]"),
    ("image_size", "64x64", r'image_size must be .* got "64x64"'),
    ("image_size", [64, 72], r"image_size must be a multiple of 2\*\*depth = 16 on each side, got \[64, 72\]"),
    ("channels", 2, r"channels must be 1 \(grey\) or 3 \(RGB\), got 2"),
    ("channels", True, r"channels must be 1 \(grey\) or 3 \(RGB\), got true"),
    ("width", 0, r"width must be an integer in \[1, 512\], got 0"),
    ("width", 100000, r"width must be an integer in \[1, 512\], got 100000"),
    ("depth", 30, r"depth must be an integer in \[1, 8\], got 30"),
    ("latent_dim", 8.5, r"latent_dim must be an integer in \[1, 8192\], got 8.5"),
    ("smoothing_sigma", -1, r"smoothing_sigma must be a finite number in \[0, 64\], got -1"),
    ("smoothing_sigma", 1e5, r"smoothing_sigma must be a finite number in \[0, 64\], got 100000.0"),
    ("smoothing_sigma", NAN, r"smoothing_sigma must be a finite number in \[0, 64\], got NaN"),
    ("score_reduction", "foo", 'score_reduction must be one of "max", "topk", got "foo"'),
    ("topk", 0, r"topk must be a finite number in \(0, 1\], got 0"),
    ("topk", 1.5, r"topk must be a finite number in \(0, 1\], got 1.5"),
    ("topk", INF, r"topk must be a finite number in \(0, 1\], got Infinity"),
    ("residual", "msgms", 'residual must be one of "l2", "ssim", "ssim\\+l2", got "msgms"'),  # inpaint's own map
    ("residual", 0, "residual must be a string, got 0"),
    ("beta", -1, r"beta must be a finite number in \[0, inf\), got -1"),
    ("lr", NAN, r"lr must be a finite number in \(0, inf\), got NaN"),
    ("options", {"noise_std": 0.1}, r"unknown option\(s\) \['noise_std'\] for model 'ssim-ae'; it takes none"),
    ("options", [], "options must be a JSON object, got \\[\\]"),
    ("colour", "red", r"unknown model config keys \['colour'\]"),
]

CALIBRATION_CASES = [  # (field, value, message after "calibration.json: "); None: the field removed
    ("image_threshold", NAN, "image_threshold must be a finite number, got NaN"),
    ("image_threshold", "0.5", 'image_threshold must be a finite number, got "0.5"'),
    ("image_threshold", None, "missing field\\(s\\) image_threshold; a calibration has image_threshold, "),
    ("pixel_threshold", -INF, "pixel_threshold must be a finite number, got -Infinity"),
    ("score_mean", INF, "score_mean must be a finite number, got Infinity"),
    ("score_std", -0.1, r"score_std must be a finite number in \[0, inf\), got -0.1"),
    ("score_std", NAN, r"score_std must be a finite number in \[0, inf\), got NaN"),
    ("map_low", NAN, "map_low must be a finite number, got NaN"),
    ("map_high", -1.0, "map_high must be at least map_low = .*, got -1.0"),
    ("target_fpr", 0, r"target_fpr must be a finite number in \(0, 1\), got 0"),
    ("pixel_fpr", 1.5, r"pixel_fpr must be a finite number in \(0, 1\), got 1.5"),
    ("method", "magic", 'method must be one of "conformal", "quantile", "gaussian-tail", got "magic"'),
    ("n_images", 0, r"n_images must be an integer in \[1, inf\), got 0"),
    ("n_images", True, r"n_images must be an integer in \[1, inf\), got true"),
    ("f1_threshold", NAN, "f1_threshold must be a finite number, got NaN"),
    ("colour", "red", r"unknown field\(s\) colour; a calibration has image_threshold, "),
]


@pytest.fixture(scope="module")
def images(trained) -> list[np.ndarray]:
    return [decode_image(s.image, 1) for s in trained.samples if s.split == "test"][:4]


@pytest.fixture
def bundle(trained, tmp_path) -> Path:
    """A private copy of the tiny trained bundle, to damage."""
    return Path(shutil.copytree(trained.bundle_path, tmp_path / "bundle"))


def edit_json(path: Path, field: str, value) -> None:
    values = json.loads(path.read_text())
    if value is None:
        del values[field]
    else:
        values[field] = value
    path.write_text(json.dumps(values))  # NaN and Infinity written as the literals json reads back


def edit_weights(bundle: Path, edit) -> None:
    tensors = load_file(bundle / WEIGHTS)
    edit(tensors)
    save_file(tensors, bundle / WEIGHTS)


def refused(path: Path, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{path}: {message}"):
        Detector.load(path.parent, device="cpu")


def test_the_untouched_bundle_loads_and_scores_as_its_files_rebuilt_by_hand(bundle, images):
    """Validation changes no number: the reference is the network rebuilt from the raw JSON and
    safetensors, scored by the same `score_images` step (no inference copy, no Detector)."""
    config = json.loads((bundle / CONFIG).read_text())
    config.pop("package_version")
    reference = build_model(ModelConfig(**{**config, "image_size": tuple(config["image_size"])}))
    reference.load_state_dict(load_file(bundle / WEIGHTS))
    calibration = json.loads((bundle / CALIBRATION).read_text())
    batch = torch.cat([resize(torch.from_numpy(a)[None], reference.config.image_size) for a in images])
    scores, _ = score_images(reference.eval(), reference.config, batch)
    predictions = Detector.load(bundle, device="cpu").predict(images)
    np.testing.assert_allclose([p.score for p in predictions], scores.numpy(), rtol=1e-5, atol=1e-6)
    assert [p.is_anomalous for p in predictions] == [bool(s >= calibration["image_threshold"]) for s in scores]
    assert all(p.threshold == calibration["image_threshold"] for p in predictions)


@pytest.mark.parametrize("field,value,message", CONFIG_CASES, ids=[f"{c[0]}={c[1]!r}" for c in CONFIG_CASES])
def test_a_bad_config_value_is_refused_naming_file_and_field(bundle, field, value, message):
    edit_json(bundle / CONFIG, field, value)
    refused(bundle / CONFIG, message)


@pytest.mark.parametrize("field,value,message", CALIBRATION_CASES,
                         ids=[f"{c[0]}={c[1]!r}" for c in CALIBRATION_CASES])
def test_a_bad_calibration_value_is_refused_naming_file_and_field(bundle, field, value, message):
    edit_json(bundle / CALIBRATION, field, value)
    refused(bundle / CALIBRATION, message)


@pytest.mark.parametrize("name,text,message", [
    (CONFIG, "{", "not valid JSON"), (CALIBRATION, "[1, 2]", "the calibration must be a JSON object, got \\[1, 2\\]"),
    (CONFIG, "null", "the model config must be a JSON object, got null"), (CALIBRATION, b"\xff\xfe", "not valid JSON"),
])
def test_a_file_that_is_not_a_json_object_is_refused(bundle, name, text, message):
    (bundle / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(bundle / name, message)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.update({"net.encoder.fc.weight": t["net.encoder.fc.weight"][:, :10].contiguous()}),
     r"tensor net.encoder.fc.weight is \[32, 10\] float32; the model config.json describes has \[32, 1024\] float32"),
    (lambda t: t.update({"net.encoder.fc.bias": t["net.encoder.fc.bias"].double()}),
     r"tensor net.encoder.fc.bias is \[32\] float64; the model config.json describes has \[32\] float32"),
    (lambda t: t.pop("net.decoder.head.bias"), r"tensor net.decoder.head.bias \(\[1\] float32\) is missing"),
    (lambda t: t.update({"net.extra": torch.zeros(3)}), "tensor net.extra is not in the model config.json describes"),
    (lambda t: t["net.decoder.fc.weight"].__setitem__((0, 0), math.nan),
     "tensor net.decoder.fc.weight holds NaN or infinite values"),
])
def test_weights_that_do_not_match_the_architecture_name_the_first_tensor(bundle, edit, message):
    edit_weights(bundle, edit)
    refused(bundle / WEIGHTS, message)


def test_weights_for_another_config_and_a_file_that_is_not_safetensors_are_refused(bundle):
    edit_json(bundle / CONFIG, "width", 16)  # valid on its own; the weights were trained at width 8
    refused(bundle / WEIGHTS, r"tensor net.encoder.stages.0.0.weight is \[8, 1, 4, 4\] float32; the model "
                              r"config.json describes has \[16, 1, 4, 4\] float32")
    (bundle / WEIGHTS).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    refused(bundle / WEIGHTS, "not a safetensors file")


def test_a_huge_image_size_is_refused_before_any_memory_is_taken(bundle):
    """[2048, 2048] once built a 0.5-billion-parameter ssim-ae (2.6 GB) before failing; a size within the
    caps whose model would not match the weights is compared on meta tensors, allocating nothing."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    edit_json(bundle / CONFIG, "image_size", [2048, 2048])
    refused(bundle / CONFIG, "image_size must be")
    edit_json(bundle / CONFIG, "image_size", [1024, 1024])  # within the caps, the weights are for 64x64
    refused(bundle / WEIGHTS, r"tensor net.encoder.fc.weight is \[32, 1024\] float32; the model config.json "
                              r"describes has \[32, 262144\] float32")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: under 100 MB


def draem_bundle(path: Path, options: dict) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(name="draem", image_size=(32, 32), width=4, depth=2,
                         options={"crop": 16, "seg_width": 4, "seg_depth": 2})
    calibration = calibrate(np.linspace(0, 1, 8), np.random.default_rng(0).random((8, 32, 32)))
    save_bundle(path, config, build_model(config).state_dict(), calibration)
    edit_json(path / CONFIG, "options", {**config.options, **options})
    return path


@pytest.mark.parametrize("options,message", [
    ({}, None),
    ({"crop": "abc"}, 'options.crop must be an integer, got "abc"'),
    ({"crop": 16.5}, "options.crop must be an integer, got 16.5"),
    ({"opacity": NAN}, "options.opacity must be a finite number, got NaN"),
    ({"edge_crops": 1}, "options.edge_crops must be true or false, got 1"),
    ({"sources": 5}, "options.sources must be a string, got 5"),
    ({"stem": "conv"}, "draem stem must be one of .* got 'conv'"),  # the model's own rule
    ({"crop": 18}, "draem crop 18 must be a multiple of 4"),
])
def test_model_options_are_checked_against_the_model_defaults(tmp_path, options, message):
    path = draem_bundle(tmp_path / "draem", options)
    if message is None:
        assert Detector.load(path, device="cpu").config.options["crop"] == 16
    else:
        refused(path / CONFIG, message)


@pytest.fixture(scope="module")
def export(trained, tmp_path_factory) -> Path:
    from anomaly.export import export_onnx

    return export_onnx(Detector.load(trained.bundle_path, device="cpu"), tmp_path_factory.mktemp("export") / "onnx")


def test_an_onnx_export_is_checked_as_a_bundle_is(export, tmp_path, images):
    from anomaly.export import ONNX

    folder = Path(shutil.copytree(export, tmp_path / "onnx"))
    scores = [p.score for p in Detector.load(folder, backend="onnxruntime").predict(images)]
    assert scores == pytest.approx([p.score for p in Detector.load(export, backend="onnxruntime").predict(images)])
    edit_json(folder / CALIBRATION, "image_threshold", NAN)
    with pytest.raises(ValueError, match=f"^{folder / CALIBRATION}: image_threshold must be a finite number, got NaN"):
        Detector.load(folder, backend="onnxruntime")
    shutil.copy(export / CALIBRATION, folder / CALIBRATION)
    edit_json(folder / CONFIG, "image_size", [32, 32])  # the graph takes 64x64
    with pytest.raises(ValueError, match=rf"^{folder / ONNX}: the graph takes {{'image': \['batch', 1, 64, 64\]}}"):
        Detector.load(folder, backend="onnxruntime")
    shutil.copy(export / CONFIG, folder / CONFIG)
    (folder / ONNX).write_bytes(b"\x08\x07garbage")
    with pytest.raises(ValueError, match=f"^{folder / ONNX}: not an ONNX model"):
        Detector.load(folder, backend="onnxruntime")


@pytest.mark.parametrize("overrides,message", [
    ({"image_size": (2048, 2048)}, r"image-size must be \[height, width\], two integers in \[1, 4096\]"),
    ({"width": 1024}, "width must be <= 512, got 1024"),
    ({"smoothing_sigma": 100.0}, "smoothing-sigma must be <= 64, got 100.0"),
])
def test_training_refuses_a_model_its_bundle_could_not_load(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_a_config_within_every_rule_round_trips(trained):
    config = trained.model_config
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert dataclasses.replace(config, smoothing_sigma=64, topk=1).check().topk == 1
