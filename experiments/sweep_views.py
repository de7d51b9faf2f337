"""Test-time views of trained draem bundles (flips, a second input scale), without retraining.

    python experiments/sweep_views.py --model /tmp/r128/bench-draem-image-size-128 --seed 0

Each bundle is scored with its saved settings (or at --sigma) under every --view below; the map of a view
with several inputs is the mean of their maps (each mapped back), the image score is reduced from that mean
as saved:
  plain   the bundle as trained
  hflip   the image and its left-right mirror
  flips   the image and its three mirrors (left-right, up-down, both)
  double  scored at twice the saved input size (a 128x128 model fed 256x256 images)
  scales  the saved size and twice it, the finer map resized to the saved size
Validation (chooses): the mean over --draws draws of validation_study.py's `drawn` and `thin` defects on
the held-out training normals (given each run's training seed); test: the test split, reported only.
Rewrites its --section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import fmt, markdown_row  # noqa: E402
from results_md import write_section  # noqa: E402
from validation_study import RECIPES  # noqa: E402

from anomaly.bundle import Bundle, load_bundle
from anomaly.data import load_samples, resize
from anomaly.detector import Detector
from anomaly.evaluation import evaluate
from anomaly.painted import held_out_normals, mean_aurocs
from anomaly.scoring import resize_map

VALIDATIONS = ("drawn", "thin")
FLIPS = {"plain": [()], "hflip": [(), (-1,)], "flips": [(), (-1,), (-2,), (-2, -1)], "double": [()], "scales": [()]}


class Views(torch.nn.Module):
    """`model` whose anomaly map is the mean over `flips` (dims of each mirror) and, with `coarse`, also
    over the input at half its size (the map resized back)."""

    def __init__(self, model: torch.nn.Module, flips: list[tuple[int, ...]], coarse: bool) -> None:
        super().__init__()
        self.model, self.flips, self.coarse = model, flips, coarse

    def anomaly_map(self, x: Tensor) -> Tensor:
        maps = [self.model.anomaly_map(x.flip(dims)).flip(dims) if dims else self.model.anomaly_map(x)
                for dims in self.flips]
        if self.coarse:
            half = (x.shape[-2] // 2, x.shape[-1] // 2)
            maps.append(resize_map(self.model.anomaly_map(resize(x, half)), tuple(x.shape[-2:])))
        return torch.stack(maps).mean(0)


def viewed(trained: Bundle, view: str, sigma: float | None = None) -> Detector:
    """A detector that scores `trained` under `view` (one of FLIPS), its map smoothed at `sigma` (None: as saved)."""
    config = trained.config if sigma is None else dataclasses.replace(trained.config, smoothing_sigma=sigma)
    if view in ("double", "scales"):
        config = dataclasses.replace(config, image_size=tuple(2 * side for side in config.image_size))
    detector = Detector(Bundle(config, trained.state_dict, trained.calibration), device="cpu")
    scorer = detector.torch_scorer
    scorer.model = Views(scorer.model, FLIPS[view], coarse=view == "scales")
    return detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a draem bundle folder (repeatable)")
    parser.add_argument("--seed", type=int, nargs="+", required=True, help="each bundle's training seed, in order")
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--views", nargs="+", choices=list(FLIPS), default=list(FLIPS))
    parser.add_argument("--defects", nargs="*", default=["crack", "uneven"], help="test per-defect columns")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--sigma", type=float, default=None, help="map smoothing for every bundle (default: as saved)")
    parser.add_argument("--section", default="accuracy-views", help="RESULTS.md section")
    args = parser.parse_args()
    if len(args.seed) != len(args.model):
        parser.error(f"give one --seed per --model ({len(args.model)}), not {len(args.seed)}")
    samples = load_samples(args.data)
    test = [s for s in samples if s.split == "test"]
    rows = []
    for path, seed in zip(args.model, args.seed):
        trained = load_bundle(path)
        normals = held_out_normals(samples, trained.config.channels, seed)
        for view in args.views:
            detector = viewed(trained, view, args.sigma)
            val = [value for name in VALIDATIONS
                   for value in mean_aurocs(detector, normals, RECIPES[name], args.draws)]
            report, _ = evaluate(detector, test)
            per_defect = [report.per_defect[d]["image_auroc"] for d in args.defects]
            rows.append(markdown_row([f"{path} (seed {seed})", view, *map(fmt, val), fmt(report.image_auroc),
                                      fmt(report.pixel_auroc), fmt(report.aupro), *map(fmt, per_defect),
                                      f"{report.images_per_second:.0f}"]))
    columns = "".join(f" val {name} image AUROC | val {name} pixel AUROC |" for name in VALIDATIONS)
    defects = "".join(f" {d} image AUROC |" for d in args.defects)
    write_section(args.section, (
        f"Test split of {args.data}; the same weights scored under test-time views (experiments/sweep_views.py)"
        f"{'' if args.sigma is None else f', maps smoothed at sigma {args.sigma:g}'}. "
        f"Validation (chooses): the mean over {args.draws} draws of the drawn and thin defects "
        "(experiments/validation_study.py) on the held-out training normals; test: reported only; img/s: "
        "end to end on this busy-or-not CPU, for scale only.\n\n"
        f"| bundle | view |{columns} image AUROC | pixel AUROC | AUPRO@0.3 |{defects} img/s |\n|"
        + "---|" * (6 + 2 * len(VALIDATIONS) + len(args.defects)) + "\n" + "\n".join(rows)))


if __name__ == "__main__":
    main()
