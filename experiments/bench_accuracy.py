"""Accuracy benchmark: the draem model on MTD, and ablations that each change one ingredient.

    python experiments/bench_accuracy.py                                  # the default draem row
    python experiments/bench_accuracy.py --ablate p_line=0 --ablate sources=images
    python experiments/bench_accuracy.py --ablate "image_size=256 crop=0 stem=pool"    # one run, three changes
    python experiments/bench_accuracy.py --data runs/data/textures/manifest.csv --section accuracy-textures

The default run also scores the same weights with the repair network alone (SSIM map, recalibrated
on the held-out normals), as DRAEM's paper does. Settings are chosen on the validation columns
(synthetic defects on held-out training normals, fixed seeds), the drawn recipe's pixel AUROC first
(anomaly/painted.py, as training computes them; experiments/validation_study.py); the test columns are
for reporting.
Each run replaces its own rows in the `accuracy` section of experiments/RESULTS.md and keeps the others.
"""

from __future__ import annotations

import argparse
import json
import dataclasses
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import HEADER, fmt, markdown_row, measure_cells  # noqa: E402
from results_md import COMMIT, RESULTS, STARTED, write_section  # noqa: E402

from anomaly.bundle import Bundle
from anomaly.cli.train import parse_options
from anomaly.config import TrainConfig
from anomaly.detector import Detector
from anomaly.models import default_image_size
from anomaly.painted import DRAWS
from anomaly.training import calibrate_model, train

VAL_COLUMNS = {"val synthetic image AUROC": "val/synthetic_image_auroc",  # column -> logged key
               "val synthetic pixel AUROC": "val/synthetic_pixel_auroc",
               "val drawn image AUROC": "drawn_image_auroc", "val drawn pixel AUROC": "drawn_pixel_auroc",
               "val thin image AUROC": "thin_image_auroc", "val thin pixel AUROC": "thin_pixel_auroc"}
COLUMNS = HEADER.splitlines()[0].strip("| ").split(" | ")[1:]
TABLE_HEADER = ("| variant | " + " | ".join([*VAL_COLUMNS, *COLUMNS]) + " | commit, date |\n|"
                + "---|" * (len(COLUMNS) + len(VAL_COLUMNS) + 2) + "\n")


def run(config: TrainConfig, label: str, repair_row: bool) -> list[str]:
    """Train and evaluate; TABLE_HEADER rows: the variant label, validation columns, HEADER's, provenance."""
    result = train(config, progress=False)
    test = [s for s in result.samples if s.split == "test"]
    (result.bundle_path / "epoch_losses.json").write_text(json.dumps(result.epoch_losses, indent=1))  # curves
    detector = Detector.load(result.bundle_path)
    validation = {**result.epoch_losses[-1], **result.painted_aurocs}  # the last epoch validates

    def row(label: str, detector: Detector, validation: dict[str, float]) -> str:
        val = [fmt(validation.get(key)) for key in VAL_COLUMNS.values()]
        cells = measure_cells(detector, test, result.config.epochs, result.train_seconds)
        return markdown_row([label, *val, *cells, f"{COMMIT}, {STARTED}"])

    rows = [row(label, detector, validation)]
    if repair_row:  # the default: also its repair network alone, as DRAEM reports it
        repair_config = dataclasses.replace(result.model_config, residual="ssim")
        weights = detector.model.state_dict()
        calibration = calibrate_model(Bundle(repair_config, weights, detector.calibration).build_model(),
                                      repair_config, result.val_samples, fpr=config.fpr, pixel_fpr=config.pixel_fpr)
        rows.append(row(f"{label}, repair net alone (ssim map, same weights)",
                        Detector(Bundle(repair_config, weights, calibration)), {}))
    return rows


def merge(section: str, rows: list[str]) -> str:
    """The section's table with `rows` replacing those of the same variant, others kept in order."""
    name = re.escape(section)
    old = re.search(f"<!-- {name}:start -->(.*?)<!-- {name}:end -->", RESULTS.read_text(), re.S)
    kept = [line for line in (old.group(1).splitlines() if old else [])
            if line.startswith("| ") and not line.startswith("| variant") and line.count("|") == TABLE_HEADER.count("|") // 2]
    new = {r.split("|")[1].strip(): r for r in rows}
    table = [new.pop(line.split("|")[1].strip(), line) for line in kept] + list(new.values())
    return TABLE_HEADER + "\n".join(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--ablate", action="append", default=[], metavar="KEY=VALUE",
                        help="train one ablation with this draem option (or training setting, e.g. width=32) "
                             "changed; several changes in one run separated by spaces, e.g. \"image_size=256 "
                             "crop=0\" (repeatable: one run each)")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--section", default="accuracy", help="RESULTS.md section (one per dataset)")
    args = parser.parse_args()
    stem = f"{args.out}/bench-draem" + ("" if args.section == "accuracy" else f"-{args.section}")
    base = TrainConfig(model="draem", data=args.data, out=stem, tracking=False)
    base = base.replace(epochs=args.epochs, seed=args.seed)
    rows = []
    for change in args.ablate or [""]:
        changed = parse_options(change.split())
        fields = {k: v for k, v in changed.items() if k in TrainConfig.__dataclass_fields__}  # e.g. width=32
        options = {k: v for k, v in changed.items() if k not in fields}  # draem options
        name = ", ".join(["draem", *([change] if change else []), *([f"{args.epochs} epochs"] if args.epochs else []),
                          *([f"seed {args.seed}"] if args.seed is not None else [])])
        out = f"{stem}-{re.sub(r'[^A-Za-z0-9.]+', '-', change)}" if change else stem
        rows += run(base.replace(options=options, out=out, **fields), name, repair_row=not change)
    size = "x".join(map(str, default_image_size("draem")))
    write_section(args.section, f"Test split of {args.data}, draem's default input size ({size} since 2026-11-30, "
                  "256x256 before; each row carries its commit, and an image_size row names its own), threshold "
                  "calibrated on held-out training normals at 1% FPR. Validation columns: the model's own map on "
                  "synthetic defects painted into the held-out training normals: training's own (fixed seed and recipe, "
                  "anomaly/models/draem/lightning_model.py) and, from 2026-11-30, the independent drawn defects and "
                  f"(later that day) thin hairlines (anomaly/painted.py, the mean of {DRAWS} draws each; "
                  "thin cells of earlier rows come from the accuracy-validation-thin, accuracy-thin-ablations and "
                  "accuracy-scoring-128 sections, where the same weights were scored); settings are chosen on them, "
                  "the drawn pixel AUROC first, never on the test columns. A row names the one option it changes from the "
                  "defaults (docs/models.md) and carries the commit and date of its own run; the command and commit "
                  "above are the last run's.\n\n"
                  + merge(args.section, rows))


if __name__ == "__main__":
    main()
