"""Training step time of the default model in float32 and bfloat16 mixed precision on this CPU.

    python experiments/bench_precision.py               # ~2 min; writes the `precision` section

One optimiser step of draem at its defaults (batch 16 of 256x256 grey images, crop 128; untrained,
seeded: the time does not depend on the weights), forward under `torch.autocast("cpu", bfloat16)` as
Lightning's "bf16-mixed" does, on 1 and 2 threads; median of --steps after two warm-up steps. Prints
the CPU's native bfloat16 features, which decide `--precision auto` (anomaly.training.resolve_precision).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from results_md import write_section  # noqa: E402

from anomaly.config import TrainConfig
from anomaly.models import build_model
from anomaly.training import resolve_precision


def step_seconds(precision: str, threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(TrainConfig(model="draem").model_config(1))
    optimiser = torch.optim.Adam(model.parameters())
    batch = torch.rand(16, 1, 256, 256)
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = model.losses(batch)["loss"]
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=9)
    args = parser.parse_args()
    features = (f"AVX512-BF16 {'yes' if torch.cpu._is_avx512_bf16_supported() else 'no'}, "
                f"AMX {'yes' if torch.cpu._is_amx_tile_supported() else 'no'}")
    lines = [f"draem defaults, one training step (batch 16, crop 128), median of {args.steps}. CPU: {features}; "
             f"`--precision auto` resolves to `{resolve_precision('auto', 'cpu')}` here.", "",
             "| threads | float32 s/step | bf16-mixed s/step | float32 / bf16 |", "|---|---|---|---|"]
    for threads in (1, 2):
        full, mixed = (step_seconds(p, threads, args.steps) for p in ("32", "bf16-mixed"))
        lines.append(f"| {threads} | {full:.3f} | {mixed:.3f} | {full / mixed:.2f} |")
        print(lines[-1], flush=True)
    write_section("precision", "\n".join(lines))


if __name__ == "__main__":
    main()
