"""Validation runs VALIDATIONS times per training, evenly spaced and always after the last epoch; the kept
losses carry val/* only for the epochs that validated (never the last validation's values again)."""

import lightning as L

from anomaly.config import ModelConfig
from anomaly.data import AnomalyDataModule, load_samples
from anomaly.models import build_model
from anomaly.training import SAMPLE_MANIFEST, EpochLosses, ValidationSchedule, validation_epochs


def test_validation_epochs_are_evenly_spaced_and_include_the_last():
    assert validation_epochs(240) == {59, 119, 179, 239}
    assert validation_epochs(10) == {2, 4, 7, 9}
    assert validation_epochs(5) == {1, 2, 3, 4}
    for epochs in (1, 2, 3, 4):  # no more epochs than validations: every one
        assert validation_epochs(epochs) == set(range(epochs))
    for epochs in range(1, 500):
        chosen = sorted(validation_epochs(epochs))
        assert chosen[-1] == epochs - 1 and len(chosen) == min(epochs, 4)


class ValidationsSeen(L.Callback):
    """The epochs whose validation loop ran, seen from Lightning's own hook."""

    def __init__(self):
        self.epochs = []

    def on_validation_epoch_start(self, trainer, pl_module):
        self.epochs.append(trainer.current_epoch)


def test_a_fit_validates_on_the_scheduled_epochs_and_keeps_only_their_val_losses():
    samples = [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:6]
    data = AnomalyDataModule(samples, (32, 32), 1, batch_size=4, val_fraction=0.34, seed=0)
    model = build_model(ModelConfig(name="ae", image_size=(32, 32), width=4, depth=2, latent_dim=8))
    seen, losses = ValidationsSeen(), EpochLosses()
    trainer = L.Trainer(max_epochs=10, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[losses, seen, ValidationSchedule()])
    trainer.fit(model, data)
    assert seen.epochs == [2, 4, 7, 9]
    assert [e for e, values in enumerate(losses.history) if "val/loss" in values] == [2, 4, 7, 9]
    assert all("train/loss" in values for values in losses.history) and len(losses.history) == 10
