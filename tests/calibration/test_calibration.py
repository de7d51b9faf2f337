import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import binomtest

from anomaly.calibration import Calibration, calibrate, conformal_threshold, normals_needed


def test_conformal_threshold_by_hand():
    scores = np.arange(200, 0, -1, dtype=float)  # 200 normals in any order; alpha 1%: k = ceil(201 * 0.99) = 199
    threshold, rank, bound = conformal_threshold(scores, 0.01)
    assert rank == 199 and bound == pytest.approx(2 / 201)
    assert threshold == np.nextafter(199.0, np.inf)  # just above the 199th smallest: 199 itself passes
    assert (scores >= threshold).sum() == 1


def brute_force_rank(n: int, fpr: float) -> int | None:
    """The smallest k in [1, n] with (n + 1 - k) / (n + 1) <= fpr, in exact arithmetic; None if none."""
    alpha, rank = Fraction(str(fpr)), None
    for k in range(n, 0, -1):  # the bound grows as k falls: stop at the first k past it
        if Fraction(n + 1 - k, n + 1) > alpha:
            break
        rank = k
    return rank


@pytest.mark.parametrize("fpr", [0.5, 0.3, 0.1, 0.05, 0.01, 0.001, 0.2, 0.37])
def test_rank_and_normals_needed_against_exact_arithmetic(fpr):
    for n in range(1, 1200, 7):
        rank = brute_force_rank(n, fpr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            got = conformal_threshold(np.arange(n, dtype=float), fpr)
        assert got.rank == (n if rank is None else rank), n
        assert got.fpr_bound == pytest.approx((n + 1 - got.rank) / (n + 1))
    assert normals_needed(fpr) == next(n for n in range(1, 5000) if brute_force_rank(n, fpr) is not None)


def simulated_false_alarms(draw, n: int, fpr: float, trials: int, seed: int = 0) -> tuple[int, float]:
    """Brute force: `trials` times, n + 1 exchangeable normal scores; calibrate on n, flag the last one.
    Returns the false alarms and the calibration's fpr_bound. (Every row's threshold is the same order
    statistic, so rows are sorted at once; the first rows check that against `conformal_threshold`.)"""
    rng = np.random.default_rng(seed)
    scores = draw(rng, (trials, n + 1))
    _, rank, bound = conformal_threshold(scores[0, :n], fpr)
    thresholds = np.nextafter(np.sort(scores[:, :n], axis=1)[:, rank - 1], np.inf)
    assert all(conformal_threshold(row[:n], fpr).threshold == t for row, t in zip(scores[:20], thresholds))
    return int((scores[:, n] >= thresholds).sum()), bound
DISTRIBUTIONS = {"normal": lambda rng, shape: rng.normal(size=shape),
                 "lognormal": lambda rng, shape: rng.lognormal(0, 2, size=shape),
                 "uniform": lambda rng, shape: rng.uniform(size=shape)}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("n,fpr", [(19, 0.05), (50, 0.1), (120, 0.01), (30, 0.2)])
def test_the_promise_holds_on_simulated_exchangeable_normals(name, n, fpr):
    """The empirical false-alarm rate of new normals lies in the 99.9% binomial interval of the bound,
    which is at most the target and above target - 1 / (n + 1)."""
    trials = 40000
    alarms, bound = simulated_false_alarms(DISTRIBUTIONS[name], n, fpr, trials)
    assert fpr - 1 / (n + 1) < bound <= fpr
    interval = binomtest(alarms, trials).proportion_ci(0.999, method="exact")
    assert interval.low <= bound <= interval.high, (alarms / trials, bound)


def test_ties_only_lower_the_false_alarm_rate():
    """Integer scores (many ties): a new normal equal to the threshold's score is not flagged, so the rate stays
    at most the bound; all-equal scores give no false alarm at all."""
    trials, n, fpr = 20000, 40, 0.1
    alarms, bound = simulated_false_alarms(lambda rng, shape: rng.integers(0, 5, size=shape).astype(float),
                                           n, fpr, trials)
    assert binomtest(alarms, trials).proportion_ci(0.999, method="exact").low <= bound
    threshold, _, _ = conformal_threshold(np.full(200, 5.0), 0.01)
    assert 5.0 < threshold < 5.0 + 1e-12


def test_too_few_normals_warn_with_the_number_needed_and_record_the_weaker_promise():
    with pytest.warns(UserWarning, match=r"1 normal images cannot guarantee a false-alarm rate of 0.01.*"
                                         r"only 0.5 \(1 / \(n \+ 1\)\); 99 normals reach 0.01"):
        threshold, rank, bound = conformal_threshold([3.0], 0.01)
    assert (threshold, rank, bound) == (np.nextafter(3.0, np.inf), 1, 0.5)
    with pytest.warns(UserWarning, match="18 normal images .* 19 normals reach 0.05"):
        assert conformal_threshold(np.arange(18.0), 0.05).fpr_bound == pytest.approx(1 / 19)
    assert conformal_threshold(np.arange(19.0), 0.05).fpr_bound == pytest.approx(0.05)  # 19 suffice: no warning
    with pytest.warns(UserWarning, match="cannot guarantee"):
        calibration = calibrate(np.arange(30.0), np.zeros((30, 4, 4)), fpr=0.01)
    assert calibration.fpr_bound == pytest.approx(1 / 31) and "above the target 0.01: 99 normals" in \
        calibration.guarantee()


@pytest.mark.parametrize("scores,fpr,message", [
    (np.array([]), 0.01, "zero normal images"), (np.ones(5), 0.0, r"in \(0, 1\), got 0.0"),
    (np.ones(5), 1.5, r"in \(0, 1\)"), (np.array([1.0, np.nan]), 0.1, "1 are not")])
def test_bad_calibration_inputs_are_rejected(scores, fpr, message):
    with pytest.raises(ValueError, match=message):
        conformal_threshold(scores, fpr)


def test_the_guarantee_round_trips_and_older_calibrations_load_without_one():
    calibration = make_calibration()
    assert calibration.method == "conformal" and calibration.conformal_rank == 298  # ceil(301 * 0.99)
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    assert "probability at most 0.00997" in calibration.guarantee()
    older = {k: v for k, v in calibration.to_dict().items() if k not in ("conformal_rank", "fpr_bound")}
    loaded = Calibration.from_dict({**older, "method": "gaussian-tail"})
    assert loaded.fpr_bound is None and "no finite-sample guarantee" in loaded.guarantee()
    with pytest.raises(ValueError, match="conformal_rank and fpr_bound must be given with method"):
        Calibration.from_dict(older)  # "conformal" without its rank
    with pytest.raises(ValueError, match=r"fpr_bound must be \(n_images \+ 1 - conformal_rank\)"):
        Calibration.from_dict({**calibration.to_dict(), "fpr_bound": 0.001})
    with pytest.raises(ValueError, match=r"conformal_rank must be an integer in \[1, 300\]"):
        Calibration.from_dict({**calibration.to_dict(), "conformal_rank": 301})


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
    with pytest.warns(UserWarning, match="10 normal images cannot guarantee"):
        cal = make_calibration(scores=np.linspace(0, 1, 10), maps=maps, pixel_fpr=0.01)
    assert cal.pixel_threshold == pytest.approx(np.quantile(maps, 0.99))
    assert cal.map_low == pytest.approx(0.4995)
    # the threshold of per-image map maxima lands in the middle of the colour scale; values outside clip
    per_image_max = maps.reshape(10, -1).max(axis=1)  # 0.099, 0.199, ..., 0.999
    with pytest.warns(UserWarning):
        map_threshold = conformal_threshold(per_image_max, 0.01).threshold
    assert cal.heatmap_scale(np.array([map_threshold]))[0] == pytest.approx(0.5)
    assert cal.heatmap_scale(np.array([-5.0, 1e6])).tolist() == [0.0, 1.0]


def test_f1_threshold_only_with_labelled_anomalies_and_round_trip():
    labelled = calibrate(np.linspace(0, 1, 200), np.zeros((200, 4, 4)), labels=[0, 0, 1, 1],
                         scores=[0.1, 0.2, 0.8, 0.9])
    assert labelled.f1_threshold == pytest.approx(0.8)
    plain = make_calibration()
    assert plain.f1_threshold is None
    assert Calibration.from_dict(labelled.to_dict()) == labelled
