"""The Detector against independent recomputation, and behaviour on synthetic defects."""

import numpy as np
import torch
import pytest
from scipy import ndimage

from anomaly.calibration import threshold_at_fpr
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
    with pytest.warns(UserWarning):  # the sample holds few normals: the Gaussian-tail rule applies
        threshold, _ = threshold_at_fpr(scores, trained.calibration.target_fpr)
    assert threshold == pytest.approx(detector.calibration.image_threshold, rel=1e-5)


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


@pytest.mark.parametrize("name", ["draem", "ganomaly", "ssim-ae", "inpaint"])
def test_inference_copy_folds_batch_norm_and_scores_like_the_model(name):
    """BatchNorm statistics are randomised so that folding them into the convolutions matters."""
    from anomaly.config import TrainConfig
    from anomaly.detector import inference_copy, score_images
    from anomaly.models import build_model

    torch.manual_seed(0)
    config = TrainConfig(model=name, image_size=(64, 64), width=8, latent_dim=32).model_config(channels=1)
    model = build_model(config).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.2, 0.2)
    fast = inference_copy(model)
    batch = torch.rand(3, 1, 64, 64)
    (scores, maps), (fast_scores, fast_maps) = (score_images(model, config, batch),
                                                score_images(fast, config, batch.contiguous(memory_format=torch.channels_last)))
    assert maps.std() > 0 and (fast_maps - maps).abs().max() <= 1e-5 and (fast_scores - scores).abs().max() <= 1e-5
    bns = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    if name == "draem":
        assert bns(model) > 0 and bns(fast) == 0
    fast_pointers = {p.data_ptr() for p in fast.parameters()}
    assert not any(p.data_ptr() in fast_pointers for p in model.parameters())  # a copy: the model is untouched


@pytest.mark.parametrize("transpose", [False, True])
def test_inference_copy_folds_convolution_and_transposed_convolution(transpose):
    from anomaly.detector import inference_copy

    torch.manual_seed(0)
    conv = (torch.nn.ConvTranspose2d(3, 4, 2, stride=2) if transpose else torch.nn.Conv2d(3, 4, 3, padding=1))
    net = torch.nn.Sequential(conv, torch.nn.BatchNorm2d(4), torch.nn.ReLU()).eval()
    net[1].running_mean.uniform_(-1, 1), net[1].running_var.uniform_(0.5, 2), net[1].weight.data.uniform_(0.5, 2)
    x = torch.rand(2, 3, 8, 8)
    fast = inference_copy(net)
    assert isinstance(fast[1], torch.nn.Identity)
    with torch.no_grad():
        assert torch.allclose(fast(x.contiguous(memory_format=torch.channels_last)), net(x), atol=1e-6)
