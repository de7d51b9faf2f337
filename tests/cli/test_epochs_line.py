"""The epoch count in `anomaly train`'s summary: a budget that cut the epochs asked for says so; the fill that draem's
default plans (anomaly.models.default_epochs) does not read as a cut. The benchmarks read the count back."""

import re

import pytest

from anomaly.cli.train import epochs_trained
from experiments.common import TRAINED


@pytest.mark.parametrize("trained, asked, given, budget, line", [
    (60, 60, 0, 0, "60 epochs"),
    (9, 9, 9, 20, "9 epochs"),
    (178, 700, 0, 20, "178 epochs, as many as fit --time-budget 20 minutes (at most 700)"),
    (6, 9, 9, 20, "6 of 9 epochs (the rest did not fit --time-budget 20 minutes)"),
    (3, 100000, 100000, 2.5, "3 of 100000 epochs (the rest did not fit --time-budget 2.5 minutes)"),
])
def test_epochs_line(trained, asked, given, budget, line):
    assert epochs_trained(trained, asked, given, budget) == line
    assert int(re.search(TRAINED, f"trained draem for {line} in 1.0 s")[1]) == trained
