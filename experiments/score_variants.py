"""The same trained weights scored several ways: painted defects in the held-out normals (the selection signal)
and, with --test, the test split (to report only).

    python -m experiments.score_variants runs/diff-mtd --data mtd \
        --variant '{}' --variant '{"residual": "l2"}' --variant '{"options": {"noise_level": 100}}' --test

Each --variant is a JSON object of ModelConfig fields over the bundle's (its "options" merged into the bundle's
options), e.g. `{"score_reduction": "topk"}` or twodec's `{"options": {"score_weights": [1, 0]}}`. The held-out
normals are those of a run trained with --seed and --val-fraction (the training defaults). One line per variant:
painted image / pixel AUROC of the drawn and thin recipes (anomaly.painted), and with --test the test split's image
AUROC, pixel AUROC, AUPRO, the mean image score of its normal and of its defective images, per defect image
AUROC, images/s end to end (decoding, scoring, maps at full size) and the Pearson correlation of the image score
with the image's mean brightness over the test images (a score that tracks brightness, not defects, shows here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from anomaly.bundle import load_bundle
from anomaly.config import ModelConfig
from anomaly.data import decode_image, load_samples
from anomaly.detector import Detector
from anomaly.evaluation import evaluate
from anomaly.painted import painted_validation
from experiments.common import dataset_path


def variant_config(config: ModelConfig, variant: dict) -> ModelConfig:
    """`config` with the fields of `variant` (its options merged into the config's), checked."""
    options = {**config.options, **variant.get("options", {})}
    return ModelConfig.from_dict({**config.to_dict(), **variant, "options": options})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--data", default="mtd", help="a suite dataset's name or a manifest/folder path")
    parser.add_argument("--variant", action="append", type=json.loads, default=None,
                        help="JSON object of ModelConfig fields (repeatable; default: the bundle as saved)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--test", action="store_true", help="also score the test split (to report, never to choose)")
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    samples = load_samples(str(dataset_path(args.data)))
    test = [s for s in samples if s.split == "test"]
    brightness = np.array([decode_image(s.image, bundle.config.channels).mean() for s in test]) if args.test else None
    for variant in args.variant or [{}]:
        config = variant_config(bundle.config, variant)
        detector = Detector(dataclasses.replace(bundle, config=config), device="cpu")
        painted = painted_validation(detector, samples, seed=args.seed, val_fraction=args.val_fraction)
        cells = [f"{recipe} {painted[f'{recipe}_image_auroc']:.3f} / {painted[f'{recipe}_pixel_auroc']:.3f}"
                 for recipe in ("drawn", "thin")]
        line = f"{json.dumps(variant)}: painted {', '.join(cells)}"
        if args.test:
            report, predictions = evaluate(detector, test)
            labels = np.array([s.label for s in test])
            scores = np.array([p.score for p in predictions])
            line += (f"; test image {report.image_auroc:.3f}, pixel {report.pixel_auroc:.3f}, AUPRO {report.aupro:.3f}"
                     f", mean score normal {scores[labels == 0].mean():.4g} / defective {scores[labels == 1].mean():.4g}"
                     f", per defect " + ", ".join(f"{d} {m['image_auroc']:.3f}" for d, m in report.per_defect.items())
                     + f", {report.images_per_second:.1f} images/s end to end"
                     + f", r(score, brightness) {np.corrcoef(scores, brightness)[0, 1]:.2f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
