"""Baseline benchmark: train and evaluate ae, ssim-ae and vae on MTD at their default settings.

    python experiments/benchmark.py --data ../shared/data/mtd/manifest.csv

Writes runs/bench-<model>/ bundles and the `baseline` table of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from results_md import write_section  # noqa: E402

from anomaly.config import TrainConfig
from anomaly.data import decode_image
from anomaly.detector import Detector, preprocess, score_images
from anomaly.evaluation import evaluate
from anomaly.training import train


def batch_throughput(detector: Detector, paths: list[Path], batch_size: int = 16, repeats: int = 3) -> float:
    """Model-only images/s (preprocessed batch -> scores and maps), best of `repeats`."""
    arrays = [decode_image(p, detector.config.channels) for p in paths[:batch_size]]
    batch = preprocess(arrays, detector.config.image_size)
    score_images(detector.model, detector.config, batch)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        score_images(detector.model, detector.config, batch)
        best = min(best, time.perf_counter() - start)
    return len(arrays) / best


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--models", default="ae,ssim-ae,vae")
    parser.add_argument("--epochs", type=int, default=None, help="override every model's default")
    parser.add_argument("--out", default="runs")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for name in args.models.split(","):
        config = TrainConfig(model=name, data=args.data, out=f"{args.out}/bench-{name}", tracking=False)
        if args.epochs:
            config = config.replace(epochs=args.epochs)
        result = train(config, progress=False)
        detector = Detector.load(result.bundle_path)
        test = [s for s in result.samples if s.split == "test"]
        report, _ = evaluate(detector, test)
        throughput = batch_throughput(detector, [s.image for s in test])
        rows.append(f"| {name} | {config.epochs} | {fmt(report.image_auroc)} | {fmt(report.pixel_auroc)} | "
                    f"{fmt(report.aupro)} | {fmt(report.f1)} | {result.train_seconds / 60:.1f} | "
                    f"{throughput:.0f} | {report.images_per_second:.0f} |")
        per_defect = ", ".join(f"{d} {fmt(m['image_auroc'])}" for d, m in report.per_defect.items())
        rows[-1] += f" {per_defect} |"
        print(rows[-1], flush=True)
    header = ("| model | epochs | image AUROC | pixel AUROC | AUPRO@0.3 | F1@thr | train min | "
              "scoring img/s (batch 16, model) | img/s end to end | image AUROC per defect |\n"
              "|---|---|---|---|---|---|---|---|---|---|\n")
    size = "x".join(map(str, TrainConfig().image_size))
    write_section("baseline", f"MTD test split ({len(test)} images), {size}, default settings, threshold "
                  f"calibrated on held-out training normals at 1% FPR.\n\n" + header + "\n".join(rows))


if __name__ == "__main__":
    main()
