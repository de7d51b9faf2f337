"""--time-budget: the fit stops when the epochs asked for would not fit, validates after its real last epoch,
draem's cosine schedule follows the epochs the budget allows, and the scoring after the fit is reserved from the
start."""

import math
import time

import lightning as L
import pytest
import torch

from anomaly.bundle import load_bundle
from anomaly.config import TrainConfig
from anomaly.training import train

EPOCH_SECONDS = 0.4  # each epoch is made this slow, so that the budget decides, not this machine's speed


class SlowEpochs(L.Callback):
    """Sleeps through every epoch; records the learning rate after each step and the epochs that validated."""

    def __init__(self):
        self.rates, self.validated = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_epoch_end(self, trainer, pl_module):
        time.sleep(EPOCH_SECONDS)

    def on_validation_epoch_start(self, trainer, pl_module):
        self.validated.append(trainer.current_epoch)


def draem(tmp_path, **settings):
    return TrainConfig(**{"model": "draem", "image_size": (32, 32), "width": 4, "depth": 2, "epochs": 40,
                          "batch_size": 8, "accelerator": "cpu", "tracking": False, "out": str(tmp_path / "bundle"),
                          "lr": 1e-3, "options": {"crop": 16, "seg_width": 4, "seg_depth": 2}, **settings})


def test_the_budget_cuts_the_epochs_and_the_schedule_follows(tmp_path):
    slow = SlowEpochs()
    # room for the work after the fit (on 6 held-out normals, a few seconds) and some of the 40 epochs asked
    budget_seconds = 30 * EPOCH_SECONDS
    result = train(draem(tmp_path, time_budget=budget_seconds / 60, val_fraction=0.04), progress=False,
                   callbacks=[slow])
    trained = result.config.epochs
    assert result.epochs_asked == 40 and 2 <= trained < 40
    assert len(result.epoch_losses) == trained  # config.epochs is what ran
    assert slow.validated[-1] == trained - 1  # the real last epoch validated
    assert slow.rates[0] > 0.9e-3  # the schedule starts at the learning rate...
    # ...and anneals over the epochs the budget allows, below where the 40 asked for would have it by now
    steps, per_epoch = len(slow.rates), len(slow.rates) // trained
    over_40 = 1e-3 * 0.5 * (1 + math.cos(math.pi * (steps - 1) / (40 * per_epoch)))
    assert slow.rates[-1] < 0.8 * over_40


def test_the_work_after_the_fit_is_reserved_from_the_start_and_a_budget_it_fills_is_warned_about(tmp_path):
    # 75 held-out normals: their calibration and painted validation take seconds, more than the 3 s budget leaves
    # once the data is loaded, however fast the epochs are
    with pytest.warns(UserWarning, match=r"--time-budget 0.05 minutes cannot be kept: the work after the fit "
                                         r"\(calibration and painted validation on the held-out normals\) will take "
                                         r"about ([\d.]+ minutes|\d+ s), more than the [0-3] s left; one epoch trains"):
        result = train(draem(tmp_path, time_budget=0.05, val_fraction=0.5), progress=False)
    assert result.config.epochs == 1 and len(result.val_samples) == 75


def test_the_budget_counts_from_the_moment_given(tmp_path):
    # the budget started a budget ago (the CLI passes the moment its command began): no room for a second epoch
    budget_seconds = 30 * EPOCH_SECONDS
    with pytest.warns(UserWarning, match="cannot be kept"):
        result = train(draem(tmp_path, time_budget=budget_seconds / 60, val_fraction=0.04), progress=False,
                       callbacks=[SlowEpochs()], started=time.perf_counter() - budget_seconds)
    assert result.epochs_asked == 40 and result.config.epochs == 1


def test_estimating_the_work_after_the_fit_changes_no_weight(tmp_path):
    budgeted = train(draem(tmp_path / "a", epochs=2, time_budget=100), progress=False)
    unlimited = train(draem(tmp_path / "b", epochs=2, time_budget=0), progress=False)
    assert budgeted.config.epochs == unlimited.config.epochs == 2 and budgeted.epoch_losses == unlimited.epoch_losses
    a, b = load_bundle(budgeted.bundle_path).state_dict, load_bundle(unlimited.bundle_path).state_dict
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_without_a_budget_every_epoch_asked_runs(tmp_path):
    slow = SlowEpochs()
    result = train(draem(tmp_path, time_budget=0, epochs=3), progress=False, callbacks=[slow])
    assert result.config.epochs == result.epochs_asked == 3 and slow.validated == [0, 1, 2]


@pytest.mark.parametrize("minutes", [-1, 1e9])
def test_a_budget_out_of_range_is_refused_naming_the_option(minutes):
    with pytest.raises(ValueError, match="time-budget"):
        TrainConfig(time_budget=minutes)
