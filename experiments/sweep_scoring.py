"""Scoring settings of trained draem bundles (map smoothing, image-score reduction), without retraining.

    python experiments/sweep_scoring.py --model /tmp/def/bench-draem --model /tmp/s1/bench-draem-normalize-0 --seed 0 1
    python experiments/sweep_scoring.py --model /tmp/tex/bench-draem-accuracy-textures \
        --data runs/data/textures/manifest.csv --section accuracy-textures-scoring

For each bundle, smoothing sigma and reduction: validation on the held-out normals of training (given each
run's training seed) with the defects of the --validations recipes of experiments/validation_study.py, each
the mean over --draws draws: by default `drawn` (an independent generator, the one that ranks bundles like
MTD's test split) and `thin` (hairline cracks; until 2026-11-30 `recipe`, training's own validation, whose
first draw is training's), which choose; and the test split (reporting only). Rewrites its --section of
experiments/RESULTS.md (one per dataset).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import fmt, markdown_row  # noqa: E402
from results_md import write_section  # noqa: E402

from anomaly.bundle import Bundle, load_bundle
from anomaly.config import TrainConfig
from anomaly.data import load_samples
from anomaly.detector import Detector
from anomaly.evaluation import evaluate
from anomaly.painted import held_out_normals, mean_aurocs
from validation_study import RECIPES, one_or_each  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a draem bundle folder (repeatable)")
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--seed", type=int, nargs="+", default=[TrainConfig.seed],
                        help="each bundle's training seed, which drew its validation slice (one: the same for all)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--reductions", nargs="+", choices=("max", "topk"), default=["max", "topk"])
    parser.add_argument("--topk", type=float, default=0.01, help="fraction of pixels for the topk reduction")
    parser.add_argument("--section", default="accuracy-scoring", help="RESULTS.md section (one per dataset)")
    parser.add_argument("--draws", type=int, default=5,
                        help="synthetic-defect draws averaged (recipe: the first is training's)")
    parser.add_argument("--validations", nargs="+", choices=list(RECIPES), default=["drawn", "thin"])
    args = parser.parse_args()
    seeds = one_or_each(parser, "--seed", args.seed, args.model)
    samples = load_samples(args.data)
    test = [s for s in samples if s.split == "test"]
    rows = []
    for path, seed in zip(args.model, seeds):
        trained = load_bundle(path)
        normals = held_out_normals(samples, trained.config.channels, seed)
        for sigma in args.sigmas:
            for reduction in args.reductions:
                config = dataclasses.replace(trained.config, smoothing_sigma=sigma, score_reduction=reduction,
                                             topk=args.topk)
                bundle = Bundle(config, trained.state_dict, trained.calibration)  # test AUROCs need no threshold
                detector = Detector(bundle)
                val = [f"{value:.3f}" for name in args.validations
                       for value in mean_aurocs(detector, normals, RECIPES[name], args.draws)]
                report, _ = evaluate(detector, test)
                image_score = reduction if reduction == "max" else f"top {args.topk:g}"
                rows.append(markdown_row([f"{path} (seed {seed})", f"{sigma:g}", image_score, *val,
                                          fmt(report.image_auroc), fmt(report.pixel_auroc), fmt(report.aupro)]))
    columns = "".join(f"| val {name} image AUROC | val {name} pixel AUROC " for name in args.validations)
    write_section(args.section, f"Test split of {args.data}; the same weights scored with other smoothing and "
                  f"image-score reductions. Validation (chooses): the mean over {args.draws} draws of the "
                  f"{', '.join(args.validations)} defects (experiments/validation_study.py, anomaly/painted.py) on "
                  "the held-out training normals; test: reported only.\n\n"
                  f"| bundle | smoothing sigma | image score {columns}"
                  "| image AUROC | pixel AUROC | AUPRO@0.3 |\n|" + "---|" * (6 + 2 * len(args.validations))
                  + "\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
