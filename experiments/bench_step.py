"""Where a draem training step's time goes, on this machine's CPU or CUDA GPU.

    python -m experiments.bench_step                    # ~30 s on this CPU; writes `training-step-cpu` (or -cuda)
    python -m experiments.bench_step --data ../shared/data/mtd/manifest.csv --epochs 2 --profile

draem at its defaults (128x128 whole images, batch 16, random images; precision as `auto` resolves on
the device), median of --steps after three warm-up steps:
- synthesis: `DraemModel.training_defects` (crop, jitter, synthetic defects);
- forward: both networks and the losses;
- backward: gradients and the Adam step;
each timed alone (the device synchronised around it), and "step", the three back to back with no
synchronisation inside (per step, over --steps). With --data, the steps/s of the whole Lightning loop
(`anomaly.training.train`, progress bar on as in the CLI; the first epoch's steps left out) for
--epochs. With --profile, the 15 operators taking the most host time over --steps steps.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning as L
import torch

from anomaly.config import TrainConfig
from anomaly.models import build_model
from anomaly.training import resolve_precision, train
from experiments.common import write_section


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Step:
    """One draem training step on random images, in three parts that can be timed apart."""

    def __init__(self, device: torch.device, precision: str) -> None:
        torch.manual_seed(0)
        self.device, self.precision = device, precision
        self.model = build_model(TrainConfig().model_config(1)).to(device).train()
        self.optimiser = torch.optim.Adam(self.model.parameters())
        self.batch = torch.rand(16, 1, *self.model.config.image_size, device=device)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16-mixed")

    def synthesis(self) -> tuple[torch.Tensor, ...]:
        with self.autocast():
            return self.model.training_defects(self.batch)

    def forward(self, clean: torch.Tensor, damaged: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.model.defect_losses(clean, damaged, mask)["loss"]

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()
        self.optimiser.step()
        self.optimiser.zero_grad()

    def __call__(self) -> None:
        self.backward(self.forward(*self.synthesis()))


def part_seconds(step: Step, steps: int) -> dict[str, float]:
    """Median seconds of each part, timed alone, and of a whole unsynchronised step."""
    times: dict[str, list[float]] = {"synthesis": [], "forward": [], "backward": []}
    for i in range(steps + 3):
        marks = [time.perf_counter()]
        batch = step.synthesis()
        synchronize(step.device)
        marks.append(time.perf_counter())
        loss = step.forward(*batch)
        synchronize(step.device)
        marks.append(time.perf_counter())
        step.backward(loss)
        synchronize(step.device)
        marks.append(time.perf_counter())
        if i >= 3:
            for (name, series), start, end in zip(times.items(), marks, marks[1:]):
                series.append(end - start)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(step.device)
    medians = {name: statistics.median(series) for name, series in times.items()}
    return medians | {"step": (time.perf_counter() - start) / steps}


class StepClock(L.Callback):
    """Wall time between consecutive training-batch starts, after the first epoch."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.gaps: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.last is not None and trainer.current_epoch > 0:
            self.gaps.append(now - self.last)
        self.last = now


def fit_seconds_per_step(data: str, epochs: int, accelerator: str) -> float:
    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        train(TrainConfig(data=data, epochs=epochs, out=out, tracking=False, evaluate=False,
                          accelerator=accelerator), callbacks=[clock])
    return statistics.median(clock.gaps)


def profile(step: Step, steps: int) -> str:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if step.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(step.device)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", default="", help="a manifest to time the whole Lightning loop on")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    precision = resolve_precision("auto", accelerator)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    step = Step(device, precision)
    seconds = part_seconds(step, args.steps)
    ms = {k: f"{1000 * v:.1f}" for k, v in seconds.items()}
    fit = fit_seconds_per_step(args.data, args.epochs, accelerator) if args.data else None
    fit_cell = f"{1000 * fit:.1f} ({1 / fit:.1f} steps/s)" if fit else "n/a"
    lines = [f"draem defaults (128x128 whole images, batch 16), median of {args.steps} steps, ms per part. "
             "Each part timed alone; `step` = the three unsynchronised; `fit` = a step of the Lightning loop "
             f"on --data ({args.epochs} epochs, the first left out).", "",
             "| device | precision | synthesis | forward | backward | step | fit |", "|---|---|---|---|---|---|---|",
             f"| {name} | {precision} | {ms['synthesis']} | {ms['forward']} | {ms['backward']} | {ms['step']} | "
             f"{fit_cell} |"]
    print(lines[-1], flush=True)
    if args.profile:
        print(profile(step, args.steps))
    write_section(f"training-step-{device.type}", "\n".join(lines))


if __name__ == "__main__":
    main()
