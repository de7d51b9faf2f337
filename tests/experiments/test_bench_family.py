"""bench_family's epochs column: the epochs trained, next to those asked or the budget that set them."""

import pytest

from experiments.bench_family import epochs_cell


@pytest.mark.parametrize("asked, trained, budget, cell", [
    (9, 9, None, "9"), (9, 6, None, "6 of 9"), (None, 30, None, "30"), (None, 14, 10.0, "14 (10 min)"),
    (12, None, None, "12"), (None, None, None, "default")])
def test_epochs_cell(asked, trained, budget, cell):
    assert epochs_cell(asked, trained, budget) == cell
