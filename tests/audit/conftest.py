"""Audit fixtures: a folder of sample images (grey JPEGs, an RGB PNG, an odd size) plus broken files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomaly.detector import Detector

SAMPLE = Path(__file__).parents[2] / "anomaly" / "sample"
BROKEN = ("empty.png", "notes.png", "truncated.jpg")


def sample_images() -> list[Path]:
    """The bundled sample's images (not its masks), sorted."""
    return sorted(SAMPLE.glob("MT_*/Imgs/*.jpg"))


def make_inputs(folder: Path, n: int = 20) -> Path:
    """`folder` with `n` sample JPEGs (in two subfolders; beyond the sample's count, copies under new
    names), one RGB PNG, one 16-bit PNG and the broken files."""
    images = sample_images()
    for sub in ("a", "b"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = images[i % len(images)]
        copy = i // len(images)
        shutil.copy(src, folder / ("a" if i % 2 else "b") / (f"{src.stem}-{copy}{src.suffix}" if copy else src.name))
    rgb = np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "b" / "rgb.png")
    Image.fromarray(np.full((40, 30), 30000, dtype=np.uint16)).save(folder / "b" / "deep16.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image\n")
    (folder / "truncated.jpg").write_bytes(images[0].read_bytes()[:600])
    return folder


@pytest.fixture(scope="session")
def detector(trained) -> Detector:
    return Detector.load(trained.bundle_path)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> Path:
    return make_inputs(tmp_path_factory.mktemp("inputs"))
