"""Resolution that follows the data: a model trained at scale 1 finds a 10-px defect on a 2048x2048 image and maps
a 500x1250 image at its own size; its calibration and painted validation score the way prediction does."""

import numpy as np
import pytest
import torch

from anomaly.calibration import calibrate
from anomaly.detector import Detector
from anomaly.tiling import OVERLAP, cut, stitch, window
from tests.tiling.scaled import TILE, texture, train_scaled


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    return train_scaled(tmp_path_factory.mktemp("scaled"))


@pytest.fixture(scope="module")
def detector(scaled):
    return Detector.load(scaled.bundle_path, device="cpu")


def test_the_bundle_records_scale_and_tile(detector):
    assert detector.config.scale == 1.0 and detector.config.image_size == TILE


def test_a_10px_defect_on_a_2048px_image_is_found_at_full_resolution(detector):
    normal = texture((2048, 2048), 99)
    damaged = normal.copy()
    damaged[1200:1210, 700:710] = 0.0  # 10 x 10 px: 0.0024% of the image
    clean, found = detector.predict_arrays([normal[None], damaged[None]])
    assert found.anomaly_map.shape == clean.anomaly_map.shape == (2048, 2048)
    assert found.score > 3 * clean.score and found.is_anomalous
    y, x = np.unravel_index(found.anomaly_map.argmax(), found.anomaly_map.shape)
    assert 1200 - 3 <= y < 1210 + 3 and 700 - 3 <= x < 710 + 3
    x0, y0, x1, y1 = found.regions[0].bbox
    assert x0 <= 700 and x1 >= 710 and y0 <= 1200 and y1 >= 1210 and (x1 - x0) * (y1 - y0) < 60 * 60


def test_a_500x1250_image_is_mapped_at_its_size_and_never_squashed(detector):
    image = texture((500, 1250), 7)
    image[100:110, 1100:1110] = 1.0
    [prediction] = detector.predict_arrays([image[None]])
    assert prediction.anomaly_map.shape == prediction.mask.shape == (500, 1250)
    y, x = np.unravel_index(prediction.anomaly_map.argmax(), (500, 1250))
    assert 97 <= y < 113 and 1097 <= x < 1113
    # the same image turned on its side gives the same map turned: nothing depends on the aspect but the tiles
    [turned] = detector.predict_arrays([np.ascontiguousarray(image.T)[None]])
    assert turned.anomaly_map.shape == (1250, 500)
    assert np.unravel_index(turned.anomaly_map.argmax(), (1250, 500)) == (x, y)


def test_the_reconstruction_is_stitched_at_the_scaled_size_too(detector):
    image = texture((500, 1250), 7)
    [repaired] = detector.reconstruct([image[None]])
    assert repaired.shape == (1, 500, 1250)
    assert np.isfinite(repaired).all()
    one_tile = texture(TILE, 8)[None]  # exactly one tile: the network's own output
    with torch.inference_mode():
        direct = detector.model(torch.from_numpy(one_tile)[None])[0].numpy()
    np.testing.assert_allclose(detector.reconstruct([one_tile])[0], direct, atol=1e-6)


def test_images_smaller_than_a_tile_are_padded_not_stretched(detector):
    image = texture((40, 50), 3)
    [prediction] = detector.predict_arrays([image[None]])
    assert prediction.anomaly_map.shape == (40, 50) and np.isfinite(prediction.anomaly_map).all()


def test_calibration_scores_the_held_out_normals_as_prediction_does(scaled, detector):
    scores, maps = detector.score_at_model_size([s.image for s in scaled.val_samples])
    assert [m.shape for m in maps] == [(256, 256)] * len(scaled.val_samples)  # the scaled images' own size
    again = calibrate(scores, maps, fpr=scaled.config.fpr, pixel_fpr=scaled.config.pixel_fpr)
    assert again.image_threshold == pytest.approx(scaled.calibration.image_threshold, rel=1e-6)
    assert again.pixel_threshold == pytest.approx(scaled.calibration.pixel_threshold, rel=1e-6)
    predicted = [p.score for p in detector.predict([s.image for s in scaled.val_samples])]
    np.testing.assert_allclose(predicted, scores, rtol=1e-6)


def test_painted_validation_paints_at_the_scaled_size(scaled):
    assert set(scaled.painted_aurocs) >= {"drawn_image_auroc", "drawn_pixel_auroc", "reconstruction_spread"}
    assert all(0 <= v <= 1 for k, v in scaled.painted_aurocs.items() if k.endswith("auroc"))
    assert scaled.painted_aurocs["reconstruction_spread"] >= 0  # tiles stitched at each image's own size


def seam_ratio(detector, image, weights=None, overlap=OVERLAP) -> float:
    """Mean horizontal step of the stitched map across tile edges over the mean step elsewhere (1: no seam)."""
    tile = detector.config.image_size
    tiles, plan, shape = cut(torch.from_numpy(image), tile, overlap)
    _, maps = detector.score_batch(tiles)
    amap = stitch(maps.float(), plan, shape, weights if weights is not None else window(tile, overlap))[0].numpy()
    steps = np.abs(np.diff(amap, axis=1))
    at_edge = np.zeros(steps.shape[1], bool)
    for _, x in plan:
        at_edge[[e - 1 for e in (x, x + tile[1]) if 0 < e < shape[1]]] = True
    return float(steps[:, at_edge].mean() / steps[:, ~at_edge].mean())


def test_the_window_hides_the_seams_that_plain_averaging_and_no_overlap_leave(detector):
    """On a 512x512 normal texture the map's step across tile edges is 1.6x its typical step with the window at
    25% overlap, 7.7x with a plain average, 32x without overlap (at 1024x1024: 2.1x, 10.6x, 32x; at 12.5% and 50%
    overlap 2.9x and 2.2x, the latter with 2.2x the tiles)."""
    image = texture((512, 512), 123)[None]
    windowed = seam_ratio(detector, image)
    plain = seam_ratio(detector, image, weights=torch.ones(TILE))
    no_overlap = seam_ratio(detector, image, overlap=0.0)
    assert windowed < 3 and plain > 2 * windowed and no_overlap > 4 * windowed


def test_painted_validation_at_a_scale_paints_the_first_images_up_to_its_pixel_budget(detector, tmp_path,
                                                                                       monkeypatch):
    from anomaly import painted
    from anomaly.data import Sample
    from tests.tiling.scaled import save_png

    samples = [Sample(save_png(texture((100, 300), i), tmp_path / f"{i}.png"), None, 0, "good", "train")
               for i in range(5)]
    normals = painted.normal_batches(samples, 1, detector.config.scale)
    assert [tuple(b["image"].shape) for b in normals] == [(1, 1, 100, 300)] * 5  # own size, one per batch
    seen = []
    monkeypatch.setattr(detector, "score_at_scale", lambda images: (seen.append(len(images)), Detector.score_at_scale(
        detector, images))[1])
    monkeypatch.setattr(painted, "MAX_PIXELS", 3 * 100 * 300 - 1)
    painted.recipe_aurocs(detector, normals, painted.RECIPES["drawn"], 0)
    assert seen == [1, 1, 1]
