import numpy as np
import pytest

from anomaly.calibration import Calibration, calibrate, threshold_at_fpr


def test_quantile_threshold_lets_exactly_fpr_of_normals_through():
    scores = np.arange(1, 201, dtype=float)  # 200 normals, fpr 1% -> 2 at or above the threshold
    threshold, method = threshold_at_fpr(scores, 0.01)
    assert method == "quantile"
    assert (scores >= threshold).sum() == 2
    assert 198 < threshold < 199 + 1e-9


def test_few_normals_use_a_gaussian_tail_never_below_the_max():
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    with pytest.warns(UserWarning, match="only 4 normal images"):
        threshold, method = threshold_at_fpr(scores, 0.01)
    # mean 2.5, population std sqrt(1.25), z(0.99) = 2.3263
    assert method == "gaussian-tail"
    assert threshold == pytest.approx(2.5 + 2.326348 * np.sqrt(1.25), rel=1e-5)
    with pytest.warns(UserWarning):
        assert threshold_at_fpr(np.array([0.0, 0.0, 10.0]), 0.01)[0] >= 10.0


@pytest.mark.parametrize("scores,fpr", [(np.array([]), 0.01), (np.ones(5), 0.0), (np.ones(5), 1.5)])
def test_bad_calibration_inputs_are_rejected(scores, fpr):
    with pytest.raises(ValueError):
        threshold_at_fpr(scores, fpr)


def make_calibration(scores=None, maps=None, **kw) -> Calibration:
    rng = np.random.default_rng(0)
    scores = rng.normal(1.0, 0.1, 300) if scores is None else scores
    maps = rng.random((300, 8, 8)) if maps is None else maps
    return calibrate(scores, maps, **kw)


def test_normalised_score_is_half_at_the_threshold_monotone_and_bounded():
    cal = make_calibration()
    t = cal.image_threshold
    assert cal.normalise([t])[0] == pytest.approx(0.5)
    values = cal.normalise([-1e9, t - 0.1, t, t + 0.1, 1e9])
    assert np.all(np.diff(values) >= 0)
    assert values[0] >= 0 and values[-1] <= 1 and values[1] < 0.5 < values[3]
    assert cal.normalise([2.0], threshold=2.0)[0] == pytest.approx(0.5)  # per-request override


@pytest.mark.parametrize("threshold", [-1e308, 1e308, -1e6, 1e6])
def test_normalised_score_stays_inside_the_open_unit_interval_for_any_finite_threshold(threshold):
    values = make_calibration().normalise([-1e9, 0.0, 1e9], threshold=threshold)
    assert ((values > 0) & (values < 1)).all()


def test_pixel_threshold_and_heatmap_scale_are_dataset_level():
    maps = np.arange(1000, dtype=float).reshape(10, 10, 10) / 1000  # pixels 0.000 .. 0.999
    cal = make_calibration(scores=np.linspace(0, 1, 10), maps=maps, pixel_fpr=0.01)
    assert cal.pixel_threshold == pytest.approx(np.quantile(maps, 0.99))
    assert cal.map_low == pytest.approx(0.4995)
    # the threshold of per-image map maxima lands in the middle of the colour scale; values outside clip
    per_image_max = maps.reshape(10, -1).max(axis=1)  # 0.099, 0.199, ..., 0.999
    with pytest.warns(UserWarning):
        map_threshold, _ = threshold_at_fpr(per_image_max, 0.01)
    assert cal.heatmap_scale(np.array([map_threshold]))[0] == pytest.approx(0.5)
    assert cal.heatmap_scale(np.array([-5.0, 1e6])).tolist() == [0.0, 1.0]


def test_f1_threshold_only_with_labelled_anomalies_and_round_trip():
    labelled = calibrate(np.linspace(0, 1, 200), np.zeros((200, 4, 4)), labels=[0, 0, 1, 1],
                         scores=[0.1, 0.2, 0.8, 0.9])
    assert labelled.f1_threshold == pytest.approx(0.8)
    plain = make_calibration()
    assert plain.f1_threshold is None
    assert Calibration.from_dict(labelled.to_dict()) == labelled
