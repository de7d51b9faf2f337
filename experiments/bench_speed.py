"""Inference speed per model and backend against this machine's matrix-multiply peak.

    python -m experiments.bench_speed                      # every model in anomaly.models.OPTIONS
    python -m experiments.bench_speed --models ssim-ae --repeats 5

For each model at its default settings (its default input size, 128x128 for draem and 256x256 for the others;
1 channel, width 16, depth 4; untrained weights,
seeded: speed does not depend on their values): forward GFLOPs per image of `anomaly_map` (counted by
torch.utils.flop_counter, convolutions and matmuls, so the dense blur matrices count in full), images/s
of the scoring step (preprocessed batch -> maps + scores, `Detector.score_batch`) at batch 1 and 16
for the torch and onnxruntime backends (best of --repeats), and the achieved GFLOP/s as a fraction of
the fp32 matmul peak measured in the same run (2048x2048 torch.matmul, all cores, best of 10, taken
before and after the models; the higher is used). The torch backend is the shipped path
(`anomaly.backends.TorchScorer`: an inference copy with BatchNorm folded, channels-last). Then the
torch variants tried for the default model (threads, the trained module as is). Writes the `speed` section of experiments/RESULTS.md.

    python -m experiments.bench_speed --tiles              # the default model at scale 1 (anomaly.tiling)

With --tiles instead: the default model with `scale` 1.0 (images at their own size, scored in tiles of its
input size overlapping by anomaly.tiling.OVERLAP), end to end through `Detector.predict_arrays` (tiling,
scoring, stitching, regions; decoding excluded): images/s on batches of 16 512x512 images and megapixels/s on
one 2048x2048 image, torch and onnxruntime; beside them, in the same run, the same images resized to the
input size (no scale) and the network run once on the whole image (it is fully convolutional), the
alternative to tiles. Writes the `speed-tiles` section.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from anomaly.config import TrainConfig
from anomaly.backends import OnnxScorer, TorchScorer, onnx_bytes, score_images
from anomaly.models import OPTIONS, build_model

BATCHES = (1, 16)
from experiments.common import write_section


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best fp32 GFLOP/s of an n x n matmul on all cores (torch's default thread count)."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def images_per_second(fn: Callable[[torch.Tensor], object], batch: torch.Tensor, repeats: int,
                      budget_s: float = 20.0) -> float:
    """Best of `repeats` timed calls after one warm-up, stopping early once `budget_s` is spent."""
    fn(batch)
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        seconds = _seconds(lambda: fn(batch))
        best, spent = min(best, seconds), spent + seconds
        if spent > budget_s:
            break
    return len(batch) / best


def gflops_per_image(model: torch.nn.Module, config) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.anomaly_map(torch.rand(1, config.channels, *config.image_size))
    return counter.get_total_flops() / 1e9


def bench_model(name: str, repeats: int) -> dict:
    torch.manual_seed(0)
    config = TrainConfig(model=name).model_config(channels=1)
    model = build_model(config).eval()
    gflops = gflops_per_image(model, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx = OnnxScorer(onnx_bytes(model, config))
    backends = {"torch": TorchScorer(model, config, torch.device("cpu")), "onnxruntime": onnx}
    rates = {(backend, b): images_per_second(fn, torch.rand(b, config.channels, *config.image_size), repeats)
             for backend, fn in backends.items() for b in BATCHES}
    return {"name": name, "gflops": gflops, "rates": rates, "config": config, "model": model}


def torch_variants(model: torch.nn.Module, config, repeats: int) -> list[tuple[str, dict[int, float]]]:
    """Scoring-step images/s of the default model under the options tried for the torch path."""
    threads = torch.get_num_threads()
    shipped = TorchScorer(model, config, torch.device("cpu"))
    variants = {
        f"as shipped (inference copy: BatchNorm folded, channels-last; {threads} threads)": (threads, shipped),
        "as shipped, 1 thread": (1, shipped),
        f"the built module as is (contiguous; {threads} threads)": (threads, lambda x: score_images(model, config, x)),
    }
    rows = []
    for label, (n, fn) in variants.items():
        torch.set_num_threads(n)
        rows.append((label, {b: images_per_second(fn, torch.rand(b, config.channels, *config.image_size), repeats)
                             for b in BATCHES}))
    torch.set_num_threads(threads)
    return rows


def top_ops(fn: Callable[[torch.Tensor], object], batch: torch.Tensor, n: int = 6) -> list[tuple[str, float]]:
    """torch.profiler's `n` most expensive operators (self CPU ms) of one call after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    fn(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(batch)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:n]
    return [(e.key, e.self_cpu_time_total / 1000) for e in ops]


def bench_tiles(repeats: int) -> None:
    """The --tiles measurements (module docstring), written to the `speed-tiles` section."""
    import numpy as np

    from anomaly.bundle import Bundle
    from anomaly.calibration import calibrate
    from anomaly.detector import Detector
    from anomaly.tiling import OVERLAP, pad_to_tile, tile_plan

    torch.manual_seed(0)
    config = TrainConfig(model=TrainConfig().model, scale=1.0).model_config(channels=1)
    model = build_model(config).eval()
    bundle = Bundle(config, model.state_dict(), calibrate(np.random.rand(20), np.random.rand(20, 8, 8)))
    tile = "x".join(map(str, config.image_size))
    rows = []
    for side, batch in ((512, 16), (2048, 1)):
        arrays = [np.random.default_rng(i).random((1, side, side), dtype=np.float32) for i in range(batch)]
        tiles = len(tile_plan(tuple(pad_to_tile(torch.zeros(1, side, side), config.image_size).shape[-2:]),
                              config.image_size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            detectors = {backend: Detector(bundle, device="cpu", backend=backend)
                         for backend in ("torch", "onnxruntime")}
        for backend, detector in detectors.items():
            rate = images_per_second(lambda _: detector.predict_arrays(arrays), torch.zeros(batch), repeats)
            rows.append((f"{side}x{side}", batch, f"{tiles} tiles of {tile}, {backend}", rate,
                         rate * side * side / 1e6))
        resized = Detector(Bundle(dataclasses.replace(config, scale=None), model.state_dict(), bundle.calibration),
                           device="cpu")
        rate = images_per_second(lambda _: resized.predict_arrays(arrays), torch.zeros(batch), repeats)
        rows.append((f"{side}x{side}", batch, f"no scale: resized to {tile} (the default), torch", rate,
                     rate * side * side / 1e6))
        whole = TorchScorer(model, config, torch.device("cpu"))
        rate = images_per_second(whole, torch.rand(1, 1, side, side), repeats)
        rows.append((f"{side}x{side}", 1, "whole image in one pass (scoring step only), torch", rate,
                     rate * side * side / 1e6))
        print(rows[-4:], flush=True)
    lines = [f"{config.name} at its defaults with scale 1.0: images at their own size, tiles of {tile} overlapping by "
             f"{OVERLAP:.0%} of a side; untrained seeded weights; best of {repeats}. End to end through "
             "`Detector.predict_arrays` (decoding excluded) unless stated.", "",
             "| image | batch | path | images/s | megapixels/s |", "|---|---|---|---|---|"]
    lines += [f"| {size} | {batch} | {path} | {rate:.2f} | {mp:.2f} |" for size, batch, path, rate, mp in rows]
    write_section("speed-tiles", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(OPTIONS), help="comma-separated model names")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (best is kept)")
    parser.add_argument("--tiles", action="store_true", help="measure the default model at scale 1 instead")
    args = parser.parse_args()
    if args.tiles:
        return bench_tiles(args.repeats)
    peaks = [matmul_peak()]
    print(f"matmul peak {peaks[0]:.1f} GFLOP/s", flush=True)
    results = []
    for name in args.models.split(","):
        results.append(bench_model(name, args.repeats))
        r = results[-1]
        print(name, f"{r['gflops']:.2f} GFLOP/img", {f"{k[0]}@{k[1]}": round(v, 1) for k, v in r["rates"].items()},
              flush=True)
    default = next((r for r in results if r["name"] == TrainConfig().model), results[0])
    variants = torch_variants(default["model"], default["config"], args.repeats)
    for label, rates in variants:
        print(label, rates, flush=True)
    batch = torch.rand(16, default["config"].channels, *default["config"].image_size)
    profiles = {"the built module as is": top_ops(lambda x: score_images(default["model"], default["config"], x), batch),
                "as shipped (TorchScorer)": top_ops(TorchScorer(default["model"], default["config"],
                                                                torch.device("cpu")), batch)}
    peaks.append(matmul_peak())
    peak = max(peaks)

    lines = [f"fp32 matmul peak (2048x2048, {torch.get_num_threads()} threads, best of 10): "
             f"{peaks[0]:.1f} GFLOP/s before the models, {peaks[1]:.1f} after; {peak:.1f} used below.",
             "Scoring step only (preprocessed batch -> anomaly maps + scores); best of "
             f"{args.repeats}. GFLOP/s = GFLOPs per image x images/s.", "",
             "| model | input | GFLOPs / image | backend | img/s batch 1 | img/s batch 16 | GFLOP/s batch 16 "
             "| % of peak |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for backend in ("torch", "onnxruntime"):
            achieved = r["gflops"] * r["rates"][(backend, 16)]
            size = "x".join(map(str, r["config"].image_size))
            lines.append(f"| {r['name']} | {size} | {r['gflops']:.2f} | {backend} | {r['rates'][(backend, 1)]:.1f} | "
                         f"{r['rates'][(backend, 16)]:.1f} | {achieved:.1f} | {100 * achieved / peak:.0f}% |")
    lines += ["", f"Torch options tried on the default model ({default['name']}):", "",
              "| torch path | img/s batch 1 | img/s batch 16 |", "|---|---|---|"]
    lines += [f"| {label} | {rates[1]:.1f} | {rates[16]:.1f} |" for label, rates in variants]
    lines += ["", f"Profile of one batch of 16 ({default['name']}, torch.profiler, self CPU time of the costliest "
              "operators):", ""]
    for label, ops in profiles.items():
        lines.append(f"- {label}: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in ops))
    write_section("speed", "\n".join(lines))


if __name__ == "__main__":
    main()
