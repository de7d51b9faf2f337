"""The epoch count in `anomaly train`'s summary: a budget that cut the epochs asked for (given, or a model's default
`epochs`) says so; the fill that draem's default plans (its budget_epochs, anomaly.models.default_epochs) does not
read as a cut. The benchmarks read the count back."""

import re

import pytest

from anomaly.cli.train import epochs_trained
from experiments.common import TRAINED


@pytest.mark.parametrize("trained, asked, fills, budget, line", [
    (60, 60, False, 0, "60 epochs"),
    (9, 9, False, 20, "9 epochs"),
    (178, 700, True, 20, "178 epochs, as many as fit --time-budget 20 minutes (at most 700)"),
    (6, 9, False, 20, "6 of 9 epochs (the rest did not fit --time-budget 20 minutes)"),
    (20, 30, False, 4, "20 of 30 epochs (the rest did not fit --time-budget 4 minutes)"),  # ae's default 30, cut
    (3, 100000, False, 2.5, "3 of 100000 epochs (the rest did not fit --time-budget 2.5 minutes)"),
])
def test_epochs_line(trained, asked, fills, budget, line):
    assert epochs_trained(trained, asked, fills, budget) == line
    assert int(re.search(TRAINED, f"trained draem for {line} in 1.0 s")[1]) == trained
