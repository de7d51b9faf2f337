"""Training is reproducible: the same seed gives the same weights, in deterministic mode without its
costly NaN fill of every new tensor."""

import lightning as L
import torch

from anomaly.bundle import load_bundle
from anomaly.config import TrainConfig
from anomaly.training import train


class TorchFlags(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.fill = torch.utils.deterministic.fill_uninitialized_memory


def test_same_seed_same_weights_without_the_nan_fill(tmp_path):
    weights = []
    for run in ("a", "b"):
        flags = TorchFlags()
        config = TrainConfig(model="draem", image_size=(32, 32), width=4, depth=2, epochs=2, batch_size=8,
                             accelerator="cpu", tracking=False, out=str(tmp_path / run),
                             options={"crop": 16, "seg_width": 4, "seg_depth": 2})
        result = train(config, progress=False, callbacks=[flags])
        assert flags.deterministic and not flags.fill
        weights.append(load_bundle(result.bundle_path).state_dict)
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
