"""The Detector against independent recomputation, and behaviour on synthetic defects."""

import numpy as np
import torch
import pytest
from scipy import ndimage

from anomaly.calibration import conformal_threshold
from anomaly.data import decode_image
from anomaly.detector import Detector, find_regions
from anomaly.evaluation import evaluate
from sklearn.metrics import roc_auc_score


@pytest.fixture(scope="module")
def detector(trained) -> Detector:
    return Detector.load(trained.bundle_path, device="cpu")


def test_predictions_come_back_at_each_image_own_size(detector, trained):
    paths = [s.image for s in trained.samples if s.split == "test"][:5]
    predictions = detector.predict(paths, batch_size=2)
    for path, p in zip(paths, predictions):
        h, w = decode_image(path, 1).shape[1:]
        assert p.anomaly_map.shape == p.mask.shape == (h, w)
        assert p.anomaly_map.dtype == np.float32 and np.isfinite(p.anomaly_map).all()
        assert p.is_anomalous == (p.score >= p.threshold) and 0 < p.normalised_score < 1
        assert np.array_equal(p.mask, p.anomaly_map >= detector.calibration.pixel_threshold)


def test_batching_does_not_change_scores(detector, trained):
    paths = [s.image for s in trained.samples if s.split == "test"][:6]
    one_by_one = [detector.predict([p])[0].score for p in paths]
    batched = [p.score for p in detector.predict(paths, batch_size=6)]
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)


def test_calibrated_threshold_is_reproduced_from_the_validation_normals(detector, trained):
    scores = [p.score for p in detector.predict([s.image for s in trained.val_samples])]
    assert all(s.label == 0 and s.split == "train" for s in trained.val_samples)
    with pytest.warns(UserWarning, match="cannot guarantee"):  # the sample's 30 held-out normals, for 1%
        threshold, rank, bound = conformal_threshold(scores, trained.calibration.target_fpr)
    assert threshold == pytest.approx(detector.calibration.image_threshold, rel=1e-5)
    assert (rank, bound) == (detector.calibration.conformal_rank, detector.calibration.fpr_bound)


def test_threshold_override_moves_verdict_and_normalisation(detector, trained):
    path = trained.val_samples[0].image
    p = detector.predict([path])[0]
    lower = detector.predict([path], threshold=p.score)[0]
    higher = detector.predict([path], threshold=p.score * 2 + 1)[0]
    assert lower.is_anomalous and lower.normalised_score == pytest.approx(0.5)
    assert not higher.is_anomalous and higher.threshold == p.score * 2 + 1


def test_a_painted_defect_raises_the_score_and_is_localised(detector, trained):
    image = decode_image(trained.val_samples[0].image, 1)
    h, w = image.shape[1:]
    defect = image.copy()
    y0, x0, size = h // 3, w // 3, max(h, w) // 6
    defect[:, y0:y0 + size, x0:x0 + size] = 1.0 - defect[:, y0:y0 + size, x0:x0 + size].mean()
    clean, damaged = detector.predict([image, defect])
    assert damaged.score > clean.score
    peak_y, peak_x = np.unravel_index(np.argmax(damaged.anomaly_map), damaged.anomaly_map.shape)
    assert y0 - size <= peak_y <= y0 + 2 * size and x0 - size <= peak_x <= x0 + 2 * size


def test_the_heatmap_boxes_every_region_of_the_prediction(detector, trained):
    import dataclasses

    image = decode_image(trained.val_samples[0].image, 1)
    [prediction] = detector.predict([image])
    hot = prediction.anomaly_map >= np.quantile(prediction.anomaly_map, 0.99)  # regions whatever the tiny model
    prediction = dataclasses.replace(prediction, regions=find_regions(prediction.anomaly_map, hot))
    assert prediction.regions
    picture = detector.heatmap(image, prediction)
    white = np.all(picture == 255, axis=2)
    for region in prediction.regions:
        x0, y0, x1, y1 = region.bbox
        assert white[y0, x0:x1].all() and white[y1 - 1, x0:x1].all()  # top and bottom edges
        assert white[y0:y1, x0].all() and white[y0:y1, x1 - 1].all()  # left and right edges


def test_regions_match_scipy_connected_components():
    amap = np.zeros((20, 30), np.float32)
    amap[2:5, 3:7] = 0.6  # 12 pixels
    amap[10:18, 20:22] = 0.9
    amap[9, 19] = 0.95  # touches the 16-pixel blob only diagonally: joins it (8-connectivity)
    amap[0, 29] = 0.7  # isolated single pixel
    mask = amap > 0.5
    regions = find_regions(amap, mask)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    assert len(regions) == n == 3
    assert [r.area for r in regions] == sorted(np.bincount(labels.ravel())[1:].tolist(), reverse=True)
    big = regions[0]
    assert big.bbox == (19, 9, 22, 18) and big.area == 17 and big.peak == pytest.approx(0.95)


def test_evaluation_uses_the_detector_numbers(detector, trained):
    test = [s for s in trained.samples if s.split == "test"]
    report, predictions = evaluate(detector, test, batch_size=4)
    direct = [p.score for p in detector.predict([s.image for s in test])]
    np.testing.assert_allclose([p.score for p in predictions], direct, rtol=1e-5)
    assert report.image_auroc == pytest.approx(roc_auc_score([s.label for s in test], direct))
    assert report.n_normal + report.n_anomalous == len(test)
    assert set(report.per_defect) == {"blowhole", "break"}
    assert 0 <= report.pixel_auroc <= 1 and 0 <= report.aupro <= 1


def test_wrongly_shaped_array_is_rejected(detector):
    with pytest.raises(ValueError, match="expected a \\(1, H, W\\) array"):
        detector.predict([np.zeros((3, 10, 10), np.float32)])
