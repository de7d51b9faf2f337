"""experiments/blind_maps.py: the defect-blind maps and their metrics, against brute force and scikit-learn."""

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from anomaly.data import decode_image, load_samples
from experiments.blind_maps import WIDTH, blind_maps, blind_metrics
from tests.conftest import sample_subset


def test_texture_is_the_local_standard_deviation():
    grey = np.random.default_rng(0).random((40, 50))
    maps = blind_maps(grey)
    assert np.array_equal(maps["grey"], grey)
    assert np.isclose(maps["texture"][20, 25], grey[12:29, 17:34].std())  # the 17x17 window around it
    assert np.isclose(maps["object"][20, 25], maps["texture"][4:37, 9:42].mean())


def test_grey_map_pixel_auroc_matches_scikit_learn(tmp_path):
    data = sample_subset(tmp_path / "manifest.csv", 2, 3, 4)
    masks, greys = [], []
    for s in (s for s in load_samples(str(data)) if s.split == "test"):
        grey = decode_image(s.image, 1)[0]
        size = (WIDTH, round(WIDTH * grey.shape[0] / grey.shape[1]))
        greys.append(np.asarray(Image.fromarray(grey).resize(size, Image.BILINEAR)))
        masks.append(np.asarray(Image.open(s.mask).convert("L").resize(size, Image.NEAREST)) > 127 if s.mask
                     else np.zeros(greys[-1].shape, bool))
    metrics = blind_metrics(str(data))
    assert set(metrics) == {"grey", "texture", "object"}
    expected = roc_auc_score(np.concatenate([m.ravel() for m in masks]), np.concatenate([g.ravel() for g in greys]))
    assert np.isclose(metrics["grey"][0], expected)
    assert all(0 <= pro <= 1 for _, pro in metrics.values())
