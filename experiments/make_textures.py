"""Generate a second benchmark dataset, unlike MTD: woven-fabric textures with drawn defects.

    python -m experiments.make_textures --out runs/data/textures     # ~1 min, seeded, 700 images

Normal images: a grey weave (two crossed sinusoids at a random angle, period and phase), fine grain
noise and a slow illumination gradient. Defects are drawn with PIL by anomaly/painted.py, independently
of anomaly/synthetic.py (so training on our synthetic defects is not training on the test defects; the
`drawn` validation that training logs paints the same three kinds, so on this dataset it is no
independent check):
`scratch` (a thin bright or dark polyline), `stain` (a soft-edged ellipse of shifted brightness),
`hole` (small dark discs), `knot` (the weave locally compressed). Masks are where the drawn defect
(blurred by 0.7 px) is at least half strength; its faint rim outside the mask is not labelled. Writes PNG images, PNG masks (255 = defect) and manifest.csv in the MTD format
(image, mask, label, defect, split): 500 train normals, 100 test normals, 25 test images per defect.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from anomaly.painted import paint

SIZE = 256
N_TRAIN, N_TEST_GOOD, N_PER_DEFECT = 500, 100, 25
DEFECTS = ("scratch", "stain", "hole", "knot")


def weave(rng: np.random.Generator, warp: np.ndarray | None = None) -> np.ndarray:
    """(SIZE, SIZE) float in [0, 1]; `warp` (SIZE, SIZE) shifts the pattern's phase locally (a knot)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    angle = np.deg2rad(rng.uniform(-8, 8))
    u, v = x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)
    if warp is not None:
        u, v = u + warp, v + warp
    period = rng.uniform(9, 12)
    pattern = np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)) * np.sin(
        2 * np.pi * v / (period * rng.uniform(0.9, 1.1)) + rng.uniform(0, 2 * np.pi))
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), 0.8) * 2
    gradient = rng.uniform(-0.1, 0.1) * (x / SIZE - 0.5) + rng.uniform(-0.1, 0.1) * (y / SIZE - 0.5)
    return np.clip(rng.uniform(0.4, 0.6) + 0.12 * pattern + 0.04 * grain + gradient, 0, 1)


def defect(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A defective image and its mask (SIZE, SIZE) bool."""
    cx, cy = rng.uniform(40, SIZE - 40, 2)
    if kind == "knot":
        r = rng.uniform(10, 22)
        y, x = np.mgrid[0:SIZE, 0:SIZE]
        bump = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r**2))
        image = weave(rng, warp=rng.choice([-1, 1]) * 8 * bump)
        return image, bump > 0.3
    return paint(weave(rng), rng, kind, (cx, cy))


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)


def generate(out: Path, seed: int = 0) -> Path:
    """Write the dataset into `out`; its manifest's path."""
    rng, rows = np.random.default_rng(seed), []
    for i in range(N_TRAIN + N_TEST_GOOD):
        name = f"good/{i:04d}.png"
        save(out / name, weave(rng))
        rows.append({"image": name, "mask": "", "label": "normal", "defect": "good",
                     "split": "train" if i < N_TRAIN else "test"})
    for kind in DEFECTS:
        for i in range(N_PER_DEFECT):
            image, mask = defect(rng, kind)
            name = f"{kind}/{i:04d}"
            save(out / f"{name}.png", image)
            save(out / f"{name}_mask.png", mask.astype(np.float64))
            rows.append({"image": f"{name}.png", "mask": f"{name}_mask.png", "label": "anomalous",
                         "defect": kind, "split": "test"})
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} images in {out}")
    return out / "manifest.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/data/textures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generate(Path(args.out), args.seed)


if __name__ == "__main__":
    main()
