"""Family benchmark: train and evaluate dae, inpaint, twodec and ganomaly on MTD, same protocol as the baselines.

    python experiments/bench_family.py --data ../shared/data/mtd/manifest.csv

Each model at its default settings (options: see docs/models.md) and 256x256, for the epochs in
EPOCHS, chosen so that each trains in about 10-12 minutes on 2 CPU cores (~38 batch-16 steps per
epoch on MTD; the ssim-ae's 53 GFLOP step takes ~0.5 s; per-step cost measured with
torch.utils.flop_counter). Writes runs/bench-<model>/ bundles and the `family` section of
experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import HEADER, benchmark_row, default_sizes  # noqa: E402
from results_md import write_section  # noqa: E402

from anomaly.config import TrainConfig

EPOCHS = {"dae": 30, "inpaint": 8, "twodec": 9, "ganomaly": 14}
STEP_GFLOP = {  # per training step at batch 16, 256x256 (ssim-ae: 53), for the record
    "dae": 53, "inpaint": 157, "twodec": 199, "ganomaly": 126}
REFERENCES = ("Published: GANomaly 76.6 image AUROC on MTD (../shared/data/README.md); RIAD 91.7 image / "
              "94.2 pixel AUROC on MVTec AD (Zavrtanik et al. 2021), not measured on MTD.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--models", default=",".join(EPOCHS))
    parser.add_argument("--epochs", type=int, default=None, help="override every model's default")
    parser.add_argument("--out", default="runs")
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        if name not in EPOCHS:
            parser.error(f"unknown family model {name!r}; expected some of {','.join(EPOCHS)}")
        config = TrainConfig(model=name, data=args.data, out=f"{args.out}/bench-{name}", tracking=False,
                             epochs=args.epochs or EPOCHS[name])
        row, n_test = benchmark_row(config)
        rows.append(row)
    write_section("family", f"Test split of {args.data} ({n_test} images), "
                  f"{default_sizes(args.models.split(','))}, default settings and options (docs/models.md), "
                  "threshold calibrated on held-out training normals at 1% FPR. "
                  f"{REFERENCES}\n\n" + HEADER + "\n".join(rows))


if __name__ == "__main__":
    main()
