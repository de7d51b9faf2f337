"""Copy a small seeded sample of the MTD dataset into the package for the demo and the tests.

Run once from the repo root: `python -m experiments.make_sample ../shared/data/mtd`.

Images go to `anomaly/sample/` (what `anomaly audit anomaly/sample` scans), their masks to
`anomaly/sample_masks/` (the manifest points there), so an audit of the sample sees images only.
The test defects are blowholes and breaks, which the demo's 3-minute model finds (experiments/RESULTS.md,
"The demo"); frays, cracks and uneven surfaces are left to the full benchmark.
"""
import csv
import random
import shutil
import sys
from pathlib import Path

N_TRAIN, N_TEST_GOOD, N_PER_DEFECT = 150, 16, 6
DEFECTS = ("blowhole", "break")
IMAGES, MASKS = Path("anomaly/sample"), Path("anomaly/sample_masks")


def main(source: Path, images: Path = IMAGES, masks: Path = MASKS) -> None:
    rows = list(csv.DictReader(open(source / "manifest.csv")))
    rng = random.Random(0)
    pick = rng.sample([r for r in rows if r["split"] == "train"], N_TRAIN)
    pick += rng.sample([r for r in rows if r["split"] == "test" and r["label"] == "normal"], N_TEST_GOOD)
    for defect in DEFECTS:
        pick += rng.sample([r for r in rows if r["defect"] == defect and r["split"] == "test"], N_PER_DEFECT)
    for folder in (images, masks):
        if folder.exists():
            shutil.rmtree(folder)
    out_rows = []
    for row in pick:
        (images / row["image"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / row["image"], images / row["image"])
        mask = ""
        if row["mask"]:
            (masks / row["mask"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / row["mask"], masks / row["mask"])
            mask = f"../{masks.name}/{row['mask']}"
        out_rows.append({**row, "mask": mask})
    with open(images / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(out_rows)
    shutil.copy(source / "SOURCE.md", images / "SOURCE.md")
    n_defects = len(DEFECTS) * N_PER_DEFECT
    (images / "README.md").write_text(
        "# Bundled sample: Magnetic Tile Defects (MTD)\n\n"
        f"{len(pick)} images chosen with seed 0 by `experiments/make_sample.py` from the MTD dataset of\n"
        "Huang, Qiu, Yuan, \"Surface defect saliency of magnetic tile\", The Visual Computer 36, 85-96 (2020),\n"
        "doi:10.1007/s00371-018-1588-5. The authors welcome its use with this citation (see SOURCE.md).\n"
        f"Split: train = {N_TRAIN} normal images; test = {N_TEST_GOOD} normal images and {n_defects} defective\n"
        f"ones ({N_PER_DEFECT} each of {', '.join(DEFECTS)}), whose pixel masks are in ../{masks.name}/.\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:4]))
