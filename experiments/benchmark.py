"""Baseline benchmark: train and evaluate ae, ssim-ae and vae on MTD at their default settings.

    python experiments/benchmark.py --data ../shared/data/mtd/manifest.csv
    python experiments/benchmark.py --models draem --section accuracy    # the accuracy model's row

Writes runs/bench-<model>/ bundles and the `baseline` table of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))
from results_md import write_section  # noqa: E402

from anomaly.config import TrainConfig
from anomaly.data import decode_image
from anomaly.detector import Detector, preprocess
from anomaly.evaluation import evaluate
from anomaly.models import default_image_size
from anomaly.training import train


def batch_throughput(detector: Detector, paths: list[Path], batch_size: int = 16, repeats: int = 3) -> float:
    """Model-only images/s (preprocessed batch -> scores and maps), best of `repeats`."""
    arrays = [decode_image(p, detector.config.channels) for p in paths[:batch_size]]
    batch = preprocess(arrays, detector.config.image_size)
    detector.score_batch(batch)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        detector.score_batch(batch)
        best = min(best, time.perf_counter() - start)
    return len(arrays) / best


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


HEADER = ("| model | epochs | image AUROC | pixel AUROC | AUPRO@0.3 | F1@thr | train min | "
          "scoring img/s (batch 16, model) | img/s end to end | image AUROC per defect |\n"
          "|---|---|---|---|---|---|---|---|---|---|\n")


def measure_cells(detector: Detector, test: list, epochs: int, train_seconds: float) -> list[str]:
    """Evaluate `detector` on `test`; the cells of HEADER's columns after the first (the model)."""
    report, _ = evaluate(detector, test)
    throughput = batch_throughput(detector, [s.image for s in test])
    per_defect = ", ".join(f"{d} {fmt(m['image_auroc'])}" for d, m in report.per_defect.items())
    return [str(epochs), fmt(report.image_auroc), fmt(report.pixel_auroc), fmt(report.aupro), fmt(report.f1),
            f"{train_seconds / 60:.1f}", f"{throughput:.0f}", f"{report.images_per_second:.0f}", per_defect]


def default_sizes(models: list[str]) -> str:
    """The models' default input sizes for a section heading, e.g. "128x128, 256x256"."""
    return ", ".join(sorted({"x".join(map(str, default_image_size(name))) for name in models}))


def markdown_row(cells: list[str]) -> str:
    row = "| " + " | ".join(cells) + " |"
    print(row, flush=True)
    return row


def benchmark_row(config: TrainConfig) -> tuple[str, int]:
    """Train `config`, evaluate on its test split; the markdown row (HEADER's columns) and the test size."""
    result = train(config, progress=False)
    test = [s for s in result.samples if s.split == "test"]
    cells = measure_cells(Detector.load(result.bundle_path), test, result.config.epochs, result.train_seconds)
    return markdown_row([config.model, *cells]), len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--models", default="ae,ssim-ae,vae")
    parser.add_argument("--epochs", type=int, default=None, help="override every model's default")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--section", default="baseline", help="RESULTS.md section to write")
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        config = TrainConfig(model=name, data=args.data, out=f"{args.out}/bench-{name}", tracking=False)
        row, n_test = benchmark_row(config.replace(epochs=args.epochs))
        rows.append(row)
    write_section(args.section, f"Test split of {args.data} ({n_test} images), "
                  f"{default_sizes(args.models.split(','))}, default settings, threshold calibrated on held-out "
                  "training normals at 1% FPR.\n\n" + HEADER + "\n".join(rows))


if __name__ == "__main__":
    main()
