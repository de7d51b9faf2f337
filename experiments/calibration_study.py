"""Run: python -m experiments.calibration_study runs/calibration-study 3

Does the image threshold keep its promise on real scores? The split-conformal rule against the rule it
replaced (empirical quantile with n >= 1/alpha, else max(max, mean + z * std)), on MTD.

A small ssim-ae (64 px, few epochs: the question is the threshold, not the model) is trained on MTD's
training normals with the default seeded 20% held out; the held-out normals (calibration) and MTD's 190
test normals (never seen) are scored by the Detector. Then
  1. the split as trained: false alarms on the test normals for each rule, with 95% Clopper-Pearson intervals;
  2. repeated random re-splits of the pooled held-out + test normals (exchangeable by construction): the mean
     false-alarm rate of each rule over 2000 splits, for n = the held-out count and for small n (10, 30, 60).
"""
import math, sys, time, warnings
from statistics import NormalDist

import numpy as np
from scipy.stats import binomtest

from anomaly.calibration import conformal_threshold
from anomaly.config import TrainConfig
from anomaly.detector import Detector
from anomaly.training import train


def old_rule(scores, fpr):
    """The rule before: quantile (strictly above the k-th largest, k = floor(n * fpr)) when n * fpr >= 1,
    else max(max, mean + z(1 - fpr) * std)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size * fpr >= 1:
        k = int(math.floor(scores.size * fpr))
        ordered = np.sort(scores)
        return float(np.nextafter(ordered[-k - 1], np.inf) if k else ordered[-1])
    return float(max(scores.max(), scores.mean() + NormalDist().inv_cdf(1 - fpr) * scores.std()))


def conformal(scores, fpr):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return conformal_threshold(scores, fpr).threshold


def ci(k, n):
    c = binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{k}/{n} = {k / n:.2%} [{c.low:.2%}, {c.high:.2%}]"


out, epochs = sys.argv[1], int(sys.argv[2])
start = time.time()
result = train(TrainConfig(data="../shared/data/mtd/manifest.csv", out=out, model="ssim-ae", image_size=(64, 64),
                           epochs=epochs, width=8, latent_dim=32, batch_size=32, seed=0, accelerator="cpu",
                           tracking=False, evaluate=False), progress=False)
print(f"trained in {time.time() - start:.0f} s")
detector = Detector.load(out, device="cpu")
cal, _ = detector.score_at_model_size([s.image for s in result.val_samples])
test, _ = detector.score_at_model_size([s.image for s in result.samples if s.split == "test" and s.label == 0])
print(f"held-out normals n = {cal.size}, test normals {test.size}")
for fpr in (0.01, 0.05, 0.1):
    for name, rule in (("conformal", conformal), ("old", old_rule)):
        t = rule(cal, fpr)
        print(f"alpha {fpr}: {name:9s} test false alarms {ci(int((test >= t).sum()), test.size)}")
pooled, rng = np.concatenate([cal, test]), np.random.default_rng(0)
for n in (cal.size, 60, 30, 10):
    for fpr in (0.01, 0.05, 0.1):
        rates = {"conformal": [], "old": []}
        for _ in range(2000):
            order = rng.permutation(pooled.size)
            c, rest = pooled[order[:n]], pooled[order[n:]]
            for name, rule in (("conformal", conformal), ("old", old_rule)):
                rates[name].append(float((rest >= rule(c, fpr)).mean()))
        bound = conformal_threshold(np.arange(float(n)), fpr).fpr_bound if n >= math.ceil(1 / fpr) - 1 else 1 / (n + 1)
        print(f"re-splits n={n:3d} alpha {fpr}: mean false-alarm rate conformal {np.mean(rates['conformal']):.2%} "
              f"(guaranteed {bound:.2%}), old {np.mean(rates['old']):.2%}")
