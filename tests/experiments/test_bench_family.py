"""bench_family: its epochs column (the epochs trained, next to those asked or the budget that set them) and the
held-out checks it reads from `anomaly train`'s output."""

import pytest

from experiments.bench_family import epochs_cell


@pytest.mark.parametrize("asked, trained, budget, cell", [
    (9, 9, None, "9"), (9, 6, None, "6 of 9"), (None, 30, None, "30"), (None, 14, 10.0, "14 (10 min)"),
    (12, None, None, "12"), (None, None, None, "default")])
def test_epochs_cell(asked, trained, budget, cell):
    assert epochs_cell(asked, trained, budget) == cell


def test_the_held_out_checks_are_read_back_from_trains_wrapped_output():
    import textwrap

    from anomaly.painted import summary
    from experiments.common import printed_held_out_checks

    checks = {"drawn_image_auroc": 0.981, "drawn_pixel_auroc": 0.998, "thin_image_auroc": 0.914,
              "thin_pixel_auroc": 0.975, "reconstruction_spread": 0.012}
    printed = "trained twodec for 6 of 9 epochs\n" + "\n".join(textwrap.wrap(summary(checks), 60))  # a narrow terminal
    assert "hardly differ" in printed and printed_held_out_checks(printed) == checks
    assert printed_held_out_checks("trained ae for 3 epochs") == {}
