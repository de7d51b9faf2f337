"""Accuracy over training time: does a validation on synthetic defects track the test split?

    python experiments/bench_epochs.py                      # draem at its defaults
    python experiments/bench_epochs.py --epochs 60 --option p_shade=0

Trains draem once and keeps a snapshot of the weights at every epoch it validates (ten per run and
the last). Each snapshot is recalibrated on the held-out training normals and scored on
- "val recipe": the synthetic defects the model validates on while training (its fixed recipe);
- held-out kinds, painted into the same held-out normals from fixed seeds: thin curves only
  (`p_line=1`, a kind the default training never paints) and shading changes only (`p_shade=1`, a
  fifth of the default training's defects since 2026-11-30, none before);
- the test split, for reporting only: nothing here is chosen on it.
Writes the `accuracy-epochs` section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import fmt  # noqa: E402
from results_md import COMMIT, STARTED, write_section  # noqa: E402

from anomaly.bundle import Bundle
from anomaly.cli.train import parse_options
from anomaly.config import ModelConfig, TrainConfig
from anomaly.data import decode_image
from anomaly.detector import Detector, TorchScorer, preprocess
from anomaly.evaluation import evaluate
from anomaly.models.draem.lightning_model import synthetic_aurocs
from anomaly.synthetic import VALIDATION_SEED
from anomaly.synthetic import synthesize
from anomaly.training import calibrate_model, train

RECIPES = {"val recipe": dict(p_defect=0.5, p_line=1 / 3),  # as DraemModel.validation_defects
           "held-out curves": dict(p_defect=0.5, p_line=1.0),
           "held-out shades": dict(p_defect=0.5, p_shade=1.0)}


class Snapshots(L.Callback):
    """The weights after every epoch the model validated, by epoch number."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "val/synthetic_pixel_auroc" in trainer.callback_metrics:
            self.weights[trainer.current_epoch + 1] = copy.deepcopy(pl_module.state_dict())


def recipe_aurocs(model: torch.nn.Module, config: ModelConfig, clean: torch.Tensor, batch_size: int) -> list[str]:
    """Image and pixel AUROC of the model's map on each recipe's defects in `clean` (N, C, H, W)."""
    scorer, cells = TorchScorer(model, config, torch.device("cpu")), []
    for recipe in RECIPES.values():
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        maps, masks = [], []
        for batch in clean.split(batch_size):
            damaged, mask = synthesize(batch, generator=generator, **recipe)
            maps.append(scorer(damaged)[1])
            masks.append(mask)
        aurocs = synthetic_aurocs(torch.cat(maps), torch.cat(masks), config.score_reduction, config.topk)
        cells += [fmt(aurocs.get("val/synthetic_image_auroc")), fmt(aurocs.get("val/synthetic_pixel_auroc"))]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--epochs", type=int, default=0, help="0 = draem's default")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="draem option")
    parser.add_argument("--out", default="runs/bench-draem-epochs")
    args = parser.parse_args()
    snapshots = Snapshots()
    config = TrainConfig(model="draem", data=args.data, out=args.out, epochs=args.epochs, tracking=False,
                         options=parse_options(args.option))
    result = train(config, progress=False, callbacks=[snapshots])
    test = [s for s in result.samples if s.split == "test"]
    clean = preprocess([decode_image(s.image, result.model_config.channels) for s in result.val_samples],
                       result.model_config.image_size)
    header = ("| epoch | " + " | ".join(f"{name} image | {name} pixel" for name in RECIPES)
              + " | test image AUROC | test pixel AUROC | test AUPRO@0.3 | test image AUROC per defect |\n|"
              + "---|" * (2 * len(RECIPES) + 5) + "\n")
    rows = []
    for epoch, weights in sorted(snapshots.weights.items()):
        model = Bundle(result.model_config, weights, result.calibration).build_model()
        calibration = calibrate_model(model, result.model_config, result.val_samples, fpr=config.fpr,
                                      pixel_fpr=config.pixel_fpr)
        report, _ = evaluate(Detector(Bundle(result.model_config, weights, calibration)), test)
        per_defect = ", ".join(f"{d} {fmt(m['image_auroc'])}" for d, m in report.per_defect.items())
        cells = [str(epoch), *recipe_aurocs(model, result.model_config, clean, config.batch_size),
                 fmt(report.image_auroc), fmt(report.pixel_auroc), fmt(report.aupro), per_defect]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    options = ", ".join(args.option) or "defaults"
    write_section("accuracy-epochs", f"draem ({options}, {result.config.epochs} epochs, precision "
                  f"{result.config.precision}, {result.train_seconds / 60:.1f} min) on {args.data}: each "
                  f"snapshot recalibrated on the held-out normals. Columns before `test`: image and pixel "
                  f"AUROC on synthetic defects in the held-out training normals (seed {VALIDATION_SEED}); "
                  f"the test columns are reported, never used to choose. Run {COMMIT}, {STARTED}.\n\n"
                  + header + "\n".join(rows))


if __name__ == "__main__":
    main()
