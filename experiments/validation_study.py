"""Which synthetic validation ranks trained draem bundles the way the test split does? Scoring only.

    python experiments/validation_study.py --model /tmp/def3/bench-draem --model /tmp/s2/bench-draem-seg-depth-3 \
        --seed 0 2

Every bundle is scored at one smoothing (--sigma: one for all, 1 by default, draem's default until
2026-11-30; or one per bundle) on (a) its own
held-out training normals (the slice training validated on, given its training seed; at 256x256 whatever the
model's input size, so that every bundle faces the same defects) with defects from each recipe below,
half of the images left clean, the mean over --draws draws, and (b) the test split (reporting). Then,
over the bundles (five or more), Spearman's rank correlation between each recipe's AUROCs and the test's
(and each --defect type's image AUROC on the test split, its images and the test normals).
Recipes (fixed before measuring; none reads the test split):
  recipe  training's validation defects (Perlin blobs and a third curves, opacity 0.3-1, hard edges)
  faint   the same masks at opacity 0.1-0.35: real defects are subtle, and `recipe` saturates near 1
  drawn   an independent generator: anomaly/painted.py's anti-aliased scratch, stain and hole (equally
          likely; experiments/make_textures.py draws the generated textures' defects with it), painted into
          the normal tile; training logs it
  broad   large low-contrast regions, as MTD's uneven (added 2026-11-30 because drawn nears 1 and has
          none): an ellipse with semi-axes of 0.1-0.3 of the image side, edges blurred by a Gaussian of a
          third of the shorter semi-axis, brighter or darker by 0.04-0.10 grey levels; it resembles
          training's shading changes (p_shade), so it cannot judge them
  thin    hairline cracks (added 2026-11-30 because drawn nears 1 and did not see crack fall at 128x128):
          anomaly/painted.py's `hairline`, a polyline of 3-6 segments 10-35 px long, 1-2 px wide at 256x256,
          brighter or darker by 0.1-0.3 grey levels, labelled where the blurred line is at least a quarter
          strength
  soft    fainter, larger and soft-edged (added 2026-12-01 because drawn saturates at 0.997-0.998 and, at
          128x128, rewarded an unsmoothed map where the test did not; fixed before any bundle was scored on
          it): drawn's marks blurred by a further Gaussian of 2 px and at half their shift, labelled where
          the blurred mark is at least half its own peak; it ranks models worse than drawn and varies by seed as
          much as by setting (RESULTS.md, accuracy-validation-soft), so it is a recorded negative result
Rewrites its --section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import fmt, markdown_row  # noqa: E402
from results_md import write_section  # noqa: E402

from anomaly.bundle import Bundle, load_bundle
from anomaly.data import load_samples
from anomaly.detector import Detector
from anomaly.evaluation import evaluate
from anomaly.painted import RECIPES as PAINTED
from anomaly.painted import DRAWN_KINDS, Recipe, held_out_normals, mark, mean_aurocs, painted
from anomaly.synthetic import synthesize


def paint_broad(shape: tuple[int, int], rng: np.random.Generator, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A large, soft-edged, low-contrast elliptical region: its brightness shift (H, W) and mask (H, W) bool."""
    (h, w), (cx, cy) = shape, centre
    a, b = rng.uniform(0.1, 0.3, 2) * min(h, w)
    y, x = np.mgrid[0:h, 0:w]
    soft = ndimage.gaussian_filter((((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1).astype(np.float64), min(a, b) / 3)
    shift = rng.choice([-1, 1]) * rng.uniform(0.04, 0.10)
    return shift * soft, soft >= 0.5


def paint_soft(shape: tuple[int, int], rng: np.random.Generator, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """One of drawn's marks, blurred by a further 2 px and at half its shift: its brightness shift and mask."""
    shift, _ = mark(shape, rng, str(rng.choice(DRAWN_KINDS)), centre)
    blurred = ndimage.gaussian_filter(shift, 2.0)
    return 0.5 * blurred, np.abs(blurred) >= 0.5 * np.abs(blurred).max()


RECIPES: dict[str, Recipe] = {
    "recipe": lambda clean, g, rng: synthesize(clean, generator=g, p_defect=0.5, p_line=1 / 3),
    "faint": lambda clean, g, rng: synthesize(clean, generator=g, p_defect=0.5, p_line=1 / 3, opacity=(0.1, 0.35)),
    "drawn": PAINTED["drawn"],
    "broad": painted(paint_broad),
    "thin": PAINTED["thin"],
    "soft": painted(paint_soft),
}


def one_or_each(parser: argparse.ArgumentParser, option: str, values: list, models: list[str]) -> list:
    """`values` of a repeatable `option`, one per --model: a single value is every bundle's."""
    if len(values) not in (1, len(models)):
        parser.error(f"give one {option} or one per --model ({len(models)}), not {len(values)}")
    return values * len(models) if len(values) == 1 else values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a draem bundle folder (repeatable)")
    parser.add_argument("--seed", type=int, nargs="+", required=True, help="each bundle's training seed, in order")
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--sigma", type=float, nargs="+", default=[1.0],
                        help="map smoothing: one for every bundle, or one per bundle in order")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--recipe", action="append", choices=list(RECIPES), help="score only these (repeatable; default: all)")
    parser.add_argument("--defect", action="append", default=[],
                        help="also report this defect type's test image AUROC and correlate with it (repeatable)")
    parser.add_argument("--section", default="accuracy-validation", help="RESULTS.md section")
    args = parser.parse_args()
    if len(args.seed) != len(args.model):
        parser.error(f"give one --seed per --model ({len(args.model)}), not {len(args.seed)}")
    sigmas = one_or_each(parser, "--sigma", args.sigma, args.model)
    recipes = args.recipe or list(RECIPES)
    samples = load_samples(args.data)
    test = [s for s in samples if s.split == "test"]
    rows, table = [], []
    for path, seed, sigma in zip(args.model, args.seed, sigmas):
        trained = load_bundle(path)
        config = dataclasses.replace(trained.config, smoothing_sigma=sigma)
        detector = Detector(Bundle(config, trained.state_dict, trained.calibration), device="cpu")
        normals = held_out_normals(samples, config.channels, seed)
        values = []
        for name in recipes:
            values += list(mean_aurocs(detector, normals, RECIPES[name], args.draws))
        report, _ = evaluate(detector, test)
        values += [report.image_auroc, report.pixel_auroc, report.aupro]
        values += [report.per_defect[defect]["image_auroc"] for defect in args.defect]
        table.append(values)
        rows.append(markdown_row([f"{path} (seed {seed}{'' if len(args.sigma) == 1 else f', sigma {sigma:g}'})",
                                  *map(fmt, values)]))
    table = np.array(table)
    test_columns = 2 * len(recipes)
    test_image, test_pixel = table[:, test_columns], table[:, test_columns + 1]
    by_defect = dict(zip(args.defect, table[:, test_columns + 3:].T))
    correlations = []
    for i, name in enumerate(recipes if len(rows) >= 5 else ()):
        image, pixel = table[:, 2 * i], table[:, 2 * i + 1]
        cells = [spearmanr(image, test_image), spearmanr(pixel, test_pixel), spearmanr(pixel, test_image)]
        cells += [spearmanr(val, test) for test in by_defect.values() for val in (image, pixel)]
        correlations.append(markdown_row([name, *(f"{c.statistic:+.2f} (p {c.pvalue:.2f})" for c in cells)]))
    recipe_columns = "".join(f" | {name} image AUROC | {name} pixel AUROC" for name in recipes)
    correlation_table = (
        f"\n\nSpearman rank correlation over the {len(rows)} bundles (p: two-sided, no correction for {len(recipes)} recipes)."
        "\n\n| recipe | val image vs test image AUROC | val pixel vs test pixel AUROC | val pixel vs test image AUROC |"
        + "".join(f" val image vs test {d} image AUROC | val pixel vs test {d} image AUROC |" for d in args.defect)
        + "\n|" + "---|" * (4 + 2 * len(args.defect)) + "\n" + "\n".join(correlations)) if correlations else ""
    write_section(args.section, (
        f"Every bundle scored at smoothing sigma {' / '.join(f'{s:g}' for s in args.sigma)}"
        f"{' in bundle order' if len(args.sigma) > 1 else ''} (its other scoring "
        "settings as saved). Validation "
        f"columns: the mean over {args.draws} draws of each recipe (experiments/validation_study.py) on the bundle's own "
        f"held-out training normals; test columns: the test split of {args.data}, reported only.\n\n"
        f"| bundle{recipe_columns} | test image AUROC | test pixel AUROC | test AUPRO@0.3 |"
        + "".join(f" test {d} image AUROC |" for d in args.defect) + "\n|"
        + "---|" * (4 + 2 * len(recipes) + len(args.defect)) + "\n" + "\n".join(rows) + correlation_table))


if __name__ == "__main__":
    main()
