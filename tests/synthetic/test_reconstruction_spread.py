"""reconstruction_spread (anomaly.painted): how much a model's output varies with its input, against the inputs."""

import math

import numpy as np
import pytest
import torch

from anomaly.backends import score_images
from anomaly.bundle import Bundle
from anomaly.calibration import calibrate
from anomaly.config import TrainConfig
from anomaly.data import decode_image, load_samples, resize
from anomaly.detector import Detector, preprocess
from anomaly.export import export_onnx
from anomaly.models import build_model
from anomaly.painted import COLLAPSED_SPREAD, VALIDATION_SIZE, held_out_checks, reconstruction_spread, summary
from anomaly.training import SAMPLE_MANIFEST


@pytest.fixture(scope="module")
def normals():
    return [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:6]


def untrained(name: str, normals) -> Detector:
    """A seeded untrained model `name`, 64x64. Untrained, `ae`'s output hardly depends on its input
    (its decoder starts near one image for all), diffusion's denoised image does."""
    torch.manual_seed(0)
    config = TrainConfig(model=name, image_size=(64, 64), width=4, latent_dim=8).model_config(channels=1)
    model = build_model(config).eval()
    batch = preprocess([decode_image(s.image, 1) for s in normals], config.image_size)
    scores, maps = score_images(model, config, batch)
    return Detector(Bundle(config, model.state_dict(), calibrate(scores.numpy(), maps[:, 0].numpy())), device="cpu")


def test_the_spread_is_the_ratio_of_per_pixel_deviations_across_images(normals):
    detector = untrained("diffusion", normals)
    arrays = [decode_image(s.image, 1) for s in normals]
    inputs = resize(preprocess(arrays, (64, 64)), VALIDATION_SIZE).numpy()  # compared at VALIDATION_SIZE
    outputs = resize(torch.from_numpy(np.stack(detector.reconstruct(arrays))), VALIDATION_SIZE).numpy()
    expected = outputs.std(0, ddof=1).mean() / inputs.std(0, ddof=1).mean()
    assert reconstruction_spread(detector, normals) == pytest.approx(expected, rel=1e-4)


def test_a_model_that_outputs_one_image_for_all_is_named(normals):
    collapsed = held_out_checks(untrained("ae", normals), normals)
    assert collapsed["reconstruction_spread"] < 1e-6
    assert "Reconstruction spread 0.000." in summary(collapsed)
    assert f"Warning: its reconstructions hardly differ from image to image (spread 0.000 of the images' own, " \
           f"under {COLLAPSED_SPREAD})" in summary(collapsed)
    working = held_out_checks(untrained("diffusion", normals), normals)
    assert working["reconstruction_spread"] > 0.5 and "hardly differ" not in summary(working)


def test_no_spread_without_weights_or_without_two_images(normals, tmp_path):
    detector = untrained("diffusion", normals)
    assert math.isnan(reconstruction_spread(detector, normals[:1]))
    folder = export_onnx(detector.to_bundle(), tmp_path / "export")
    assert math.isnan(reconstruction_spread(Detector.load(folder, backend="onnxruntime"), normals))  # no weights
