"""Session fixtures: one tiny model trained on the bundled sample, shared by every test that needs one."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from anomaly.config import TrainConfig
from anomaly.training import SAMPLE_MANIFEST, TrainResult, train

SAMPLE_DIR = Path(str(SAMPLE_MANIFEST)).parent


def sample_normals(n: int = 8, size: tuple[int, int] = (32, 48)):
    """The first `n` bundled normal images as a (n, 1, *size) float32 batch (grey, resized)."""
    import torch

    from anomaly.data import decode_image, load_samples, resize

    normals = [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:n]
    return torch.cat([resize(torch.from_numpy(decode_image(s.image, 1))[None], size) for s in normals])
TINY = dict(model="ssim-ae", image_size=(64, 64), epochs=4, width=8, latent_dim=32, batch_size=8, seed=0,
            accelerator="cpu", tracking=False)


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory):
    """Every MLflow write of the session (in-process or in `anomaly` subprocesses, which inherit the
    environment) goes to a temporary SQLite store, never to mlflow.db / mlruns/ in the repo."""
    store = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
        yield store


def sample_subset(path: Path, n_train: int, n_test_normal: int, n_test_anomalous: int) -> Path:
    """Write a manifest at `path` with the first images of each kind from the bundled sample (absolute paths)."""
    with open(SAMPLE_MANIFEST) as f:
        rows = list(csv.DictReader(f))
    keep = ([r for r in rows if r["split"] == "train"][:n_train]
            + [r for r in rows if r["split"] == "test" and r["label"] == "normal"][:n_test_normal]
            + [r for r in rows if r["label"] == "anomalous"][:n_test_anomalous])
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in keep:
            writer.writerow({**r, "image": SAMPLE_DIR / r["image"], "mask": SAMPLE_DIR / r["mask"] if r["mask"] else ""})
    return path


@pytest.fixture(scope="session")
def sample_rows() -> list[dict[str, str]]:
    with open(SAMPLE_MANIFEST) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """ssim-ae, 64x64, 4 epochs on the bundled sample: seconds on 2 cores."""
    out = tmp_path_factory.mktemp("bundle") / "ssim-ae"
    return train(TrainConfig(out=str(out), **TINY), progress=False)
