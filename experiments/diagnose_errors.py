"""Where a trained model errs on a test split (reporting only: never used to choose settings).

    python experiments/diagnose_errors.py --model runs/mtd --data ../shared/data/mtd/manifest.csv --out /tmp/errors.png

Prints the image AUROC, the Spearman correlation of the normals' scores with the images' own
geometry (|log aspect ratio|, which the resize to the model's square input distorts, and pixel area),
and the AUROC within aspect-ratio bands; writes a grid of heatmaps: the highest-scoring test normals
(false-positive candidates) above the lowest-scoring images of each defect type.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from scipy.stats import spearmanr

from anomaly.data import load_samples
from anomaly.detector import Detector
from anomaly.metrics import image_auroc

TILE = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default="errors.png")
    parser.add_argument("--per-row", type=int, default=4)
    args = parser.parse_args()
    detector = Detector.load(args.model)
    test = [s for s in load_samples(args.data) if s.split == "test"]
    predictions = detector.predict([s.image for s in test])
    scores = np.array([p.score for p in predictions])
    labels = np.array([s.label for s in test])
    sizes = np.array([p.anomaly_map.shape for p in predictions], float)  # (H, W): maps are at each image's size
    squash = np.abs(np.log(sizes[:, 1] / sizes[:, 0]))
    normal = labels == 0
    print(f"image AUROC {image_auroc(labels, scores):.3f} ({len(test)} images)")
    for name, values in (("|log aspect|", squash), ("area", sizes.prod(1))):
        rho, p = spearmanr(scores[normal], values[normal])
        print(f"normals: Spearman(score, {name}) = {rho:.3f} (p {p:.2g})")
    for low, high in ((0, 0.2), (0.2, 0.5), (0.5, np.inf)):
        band = (squash >= low) & (squash < high)
        if len(set(labels[band])) == 2:
            print(f"|log aspect| in [{low}, {high}): {band.sum()} images, {(band & normal).sum()} normal, "
                  f"image AUROC {image_auroc(labels[band], scores[band]):.3f}")
    rows = [sorted(np.flatnonzero(normal), key=lambda i: -scores[i])[:args.per_row]]
    for defect in sorted({s.defect for s in test if s.label == 1}):
        rows.append(sorted((i for i, s in enumerate(test) if s.defect == defect), key=lambda i: scores[i])[:args.per_row])
    grid = Image.new("RGB", (TILE * args.per_row, TILE * len(rows)))
    for r, row in enumerate(rows):
        for c, i in enumerate(row):
            heatmap = detector.heatmap(detector.decode(test[i].image), predictions[i])
            grid.paste(Image.fromarray(heatmap).resize((TILE, TILE)), (c * TILE, r * TILE))
            print(f"row {r} ({test[i].defect}): {test[i].image} score {scores[i]:.3f}")
    grid.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
