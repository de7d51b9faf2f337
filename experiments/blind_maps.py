"""Pixel AUROC and AUPRO that maps blind to defects reach on a dataset's test split: the floor a model's maps must beat
before its pixel metrics say anything about defects.

    python -m experiments.blind_maps --data mvtec3d_tire bsdata

Maps, from each test image alone (grey, shrunk to 256 px wide): `grey` (the grey level), `texture` (its local standard
deviation over 17 px) and `object` (that, averaged over 33 px: where the part is, on a plain background). Scored like
a model's maps (anomaly.metrics) against the defect masks.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter

from anomaly.data import decode_image, load_samples
from anomaly.metrics import aupro, pixel_auroc
from experiments.common import SUITE, dataset_path

WIDTH = 256


def blind_maps(grey: np.ndarray) -> dict[str, np.ndarray]:
    """A (H, W) grey image -> {"grey", "texture", "object"} maps of the same shape."""
    grey = grey.astype(np.float64)
    mean = uniform_filter(grey, 17)
    texture = np.sqrt(np.maximum(uniform_filter(grey * grey, 17) - mean * mean, 0))
    return {"grey": grey, "texture": texture, "object": uniform_filter(texture, 33)}


def blind_metrics(data: str) -> dict[str, tuple[float, float]]:
    """{map name: (pixel AUROC, AUPRO)} over the test split of `data` (a suite name or a manifest/folder)."""
    masks, maps = [], {}
    for sample in load_samples(str(dataset_path(data))):
        if sample.split != "test":
            continue
        grey = decode_image(sample.image, 1)[0]
        size = (WIDTH, max(1, round(WIDTH * grey.shape[0] / grey.shape[1])))
        grey = np.asarray(Image.fromarray(grey).resize(size, Image.BILINEAR))
        if sample.mask:
            with Image.open(sample.mask) as mask:
                masks.append(np.asarray(mask.convert("L").resize(size, Image.NEAREST)) > 127)
        else:
            masks.append(np.zeros(grey.shape, bool))
        for name, values in blind_maps(grey).items():
            maps.setdefault(name, []).append(values)
    return {name: (pixel_auroc(masks, values), aupro(masks, values)) for name, values in maps.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(SUITE), metavar="NAME|PATH")
    args = parser.parse_args(argv)
    for data in args.data:
        cells = ", ".join(f"{name} {auroc:.3f} / {pro:.3f}" for name, (auroc, pro) in blind_metrics(data).items())
        print(f"{data}: pixel AUROC / AUPRO of blind maps: {cells}", flush=True)


if __name__ == "__main__":
    main()
