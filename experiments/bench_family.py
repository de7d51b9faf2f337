"""Family benchmark: every model besides the default, trained and evaluated on one dataset through the CLI.

    python -m experiments.bench_family                                         # all of them on MTD
    python -m experiments.bench_family --models ae,ssim-ae,vae --section baseline
    python -m experiments.bench_family --data textures --models dae --section family-textures
    python -m experiments.bench_family --data mvtec3d_tire --budget 10 --section family-budget-mvtec3d_tire

Each model at its default settings and options (docs/models.md) for the epochs in EPOCHS: the model's default
for ae, ssim-ae and vae; for the others chosen so that each trains in about 10-12 minutes on 2 CPU cores
(~38 batch-16 steps per epoch on MTD at 256x256; per-step GFLOPs measured with torch.utils.flop_counter:
dae 53, inpaint 157, twodec 199, ganomaly 126). Same protocol as experiments/bench_accuracy.py
(`anomaly train`, then `anomaly evaluate --json` on the test split; threshold calibrated on held-out training
normals). With --budget M, every model instead trains as many epochs as fit M minutes (`--time-budget M` over
an epoch count no run reaches), so that the rows compare at equal cost on any dataset. The epochs column gives
the epochs trained ("6 of 9": the 20-minute default budget cut the rest); spread, the reconstruction spread on
the held-out normals (anomaly.painted: under 0.05 the model outputs about one image). Writes OUT/bench-<model>/
bundles and the --section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import (SUITE, dataset_path, fmt, markdown_table, provenance, train_and_evaluate,
                                write_section)

EPOCHS = {"ae": None, "ssim-ae": None, "vae": None, "dae": 30, "inpaint": 8, "twodec": 9, "ganomaly": 14, "diffusion": 12}
UNREACHED_EPOCHS = 100_000  # with --budget: the time budget, not the epoch count, ends every run
REFERENCES = ("Published: GANomaly 76.6 image AUROC on MTD (../shared/data/README.md); RIAD 91.7 image / "
              "94.2 pixel AUROC on MVTec AD (Zavrtanik et al. 2021), not measured on MTD.")
HEADER = ["model", "epochs", "image AUROC", "pixel AUROC", "AUPRO@0.3", "F1@thr", "spread", "train min",
          "img/s end to end", "false alarms", "image AUROC per defect"]


def epochs_cell(asked: int | None, trained: int | None, budget: float | None) -> str:
    if trained is None:
        return str(asked or "default")
    if budget:
        return f"{trained} ({budget:g} min)"
    return str(trained) if asked in (None, trained) else f"{trained} of {asked}"


def row(name: str, epochs: str, report: dict) -> list[str]:
    per_defect = ", ".join(f"{d} {fmt(m['image_auroc'])}" for d, m in report["per_defect"].items())
    alarms = "n/a" if report["false_alarm_rate"] is None else (
        f"{fmt(report['false_alarm_rate'])} (target {report['target_fpr']})")
    return [name, epochs, fmt(report["image_auroc"]), fmt(report["pixel_auroc"]),
            fmt(report["aupro"]), fmt(report["f1"]), fmt(report["held_out"].get("reconstruction_spread")),
            fmt(report["train_minutes"], 1), fmt(report["images_per_second"], 0), alarms,
            per_defect]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mtd", help=f"{', '.join(SUITE)} or a manifest/folder path")
    parser.add_argument("--models", default=",".join(EPOCHS))
    parser.add_argument("--epochs", type=int, default=None, help="override every model's epochs")
    parser.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                        help="train every model for this many minutes instead (as many epochs as fit)")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--section", default="family", help="RESULTS.md section to write")
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = [m for m in models if m not in EPOCHS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; expected some of {','.join(EPOCHS)}")
    info, data, rows = provenance(), dataset_path(args.data), []
    if args.budget and args.epochs:
        parser.error("give --epochs or --budget, not both")
    for name in models:
        epochs = UNREACHED_EPOCHS if args.budget else args.epochs or EPOCHS[name]
        budget = ["--time-budget", f"{args.budget:g}"] if args.budget else []
        report = train_and_evaluate(data, Path(args.out) / f"bench-{name}",
                                    ["--model", name, *(["--epochs", str(epochs)] if epochs else []), *budget])
        rows.append(row(name, epochs_cell(None if args.budget else epochs, report["epochs"], args.budget), report))
        print("| " + " | ".join(rows[-1]) + " |", flush=True)
    n_test = report["n_normal"] + report["n_anomalous"]
    write_section(args.section, f"Test split of {data} ({n_test} images), default settings and options "
                  f"(docs/models.md), threshold calibrated on held-out training normals. {REFERENCES}\n\n"
                  + markdown_table(HEADER, rows), info)


if __name__ == "__main__":
    main()
