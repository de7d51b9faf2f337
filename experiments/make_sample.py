"""Copy a small seeded sample of the MTD dataset into `anomaly/sample/` for the demo and the tests.

Run once from the repo root: `python experiments/make_sample.py ../shared/data/mtd`.
"""
import csv
import random
import shutil
import sys
from pathlib import Path

N_TRAIN, N_TEST_GOOD, N_PER_DEFECT = 40, 8, 3


def main(source: Path, target: Path = Path("anomaly/sample")) -> None:
    rows = list(csv.DictReader(open(source / "manifest.csv")))
    rng = random.Random(0)
    pick = rng.sample([r for r in rows if r["split"] == "train"], N_TRAIN)
    pick += rng.sample([r for r in rows if r["split"] == "test" and r["label"] == "normal"], N_TEST_GOOD)
    for defect in sorted({r["defect"] for r in rows} - {"good"}):
        pick += rng.sample([r for r in rows if r["defect"] == defect], N_PER_DEFECT)
    if target.exists():
        shutil.rmtree(target)
    for row in pick:
        for key in ("image", "mask"):
            if row[key]:
                (target / row[key]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source / row[key], target / row[key])
    with open(target / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(pick)
    shutil.copy(source / "SOURCE.md", target / "SOURCE.md")
    (target / "README.md").write_text(
        "# Bundled sample: Magnetic Tile Defects (MTD)\n\n"
        f"{len(pick)} images chosen with seed 0 by `experiments/make_sample.py` from the MTD dataset of\n"
        "Huang, Qiu, Yuan, \"Surface defect saliency of magnetic tile\", The Visual Computer 36, 85-96 (2020),\n"
        "doi:10.1007/s00371-018-1588-5. The authors welcome its use with this citation (see SOURCE.md).\n"
        "Split: train = normal images only; test = normal and defective images with pixel masks.\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
