"""experiments/bench_step.py: it times draem's own training step, part by part."""

import torch

from experiments.bench_step import Step, part_seconds


def test_the_timed_parts_make_the_models_own_loss():
    step = Step(torch.device("cpu"), "32")
    step.model.generator = torch.Generator().manual_seed(0)  # the training defects' stream
    whole = step.model.losses(step.batch)["loss"]
    step.model.generator = torch.Generator().manual_seed(0)
    assert torch.equal(step.forward(*step.synthesis()), whole)


def test_every_part_is_timed():
    seconds = part_seconds(Step(torch.device("cpu"), "32"), steps=1)
    assert set(seconds) == {"synthesis", "forward", "backward", "step"} and min(seconds.values()) > 0
