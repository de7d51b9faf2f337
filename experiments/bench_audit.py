"""Audit throughput vs the Detector's pure batch throughput, measured in the same run.

    python -m experiments.bench_audit --data ../shared/data/mtd/manifest.csv --n 500

pure: the n images decoded into memory first, then `Detector.predict_arrays` in batches (scores, maps at
each image's size, regions): the ceiling for any audit. audit: `run_audit` from the files (decoding,
scoring, thumbnails, overlays of anomalous images, results rows flushed per image), report excluded
and timed apart. The two alternate every `--chunk` images (the audit resuming its own output), so a
machine shared with other work loads both alike. Writes the `audit` section of experiments/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from anomaly.audit import AuditOptions, run_audit
from anomaly.audit.report import write_report
from anomaly.data import read_manifest
from anomaly.detector import Detector
from experiments.common import write_section


def pure_throughput(detector: Detector, arrays: list, batch_size: int) -> float:
    """Images/s of Detector.predict_arrays over in-memory decoded arrays."""
    start = time.perf_counter()
    for i in range(0, len(arrays), batch_size):
        detector.predict_arrays(arrays[i:i + batch_size])
    return len(arrays) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/mtd/manifest.csv")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--model", default="runs/sample-ssim-ae",
                        help="bundle; train one with `anomaly train --model ssim-ae --out runs/sample-ssim-ae --no-evaluate`")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=50, help="images per alternation of pure and audit")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()

    detector = Detector.load(args.model)
    paths = [str(s.image) for s in read_manifest(args.data)][: args.n]
    arrays = [detector.decode(p) for p in paths]
    detector.predict_arrays(arrays[: args.batch_size])  # warm-up
    pure_s, audit_s, pure_cpu, audit_cpu, stages = 0.0, 0.0, 0.0, 0.0, {}
    with tempfile.TemporaryDirectory() as tmp:
        options = AuditOptions(out=Path(tmp), batch_size=args.batch_size, workers=args.workers, resume=True)
        for k, i in enumerate(range(0, len(paths), args.chunk)):  # alternate, ABBA: both see the same load
            for method in ("pure", "audit") if k % 2 == 0 else ("audit", "pure"):
                cpu = time.process_time()  # CPU seconds of all this process's threads
                if method == "pure":
                    chunk = arrays[i:i + args.chunk]
                    pure_s += len(chunk) / pure_throughput(detector, chunk, args.batch_size)
                    pure_cpu += time.process_time() - cpu
                else:
                    summary = run_audit(detector, paths[: i + args.chunk], options, report=False)  # only the new chunk
                    audit_s += summary.seconds
                    audit_cpu += time.process_time() - cpu
                    stages = {name: stages.get(name, 0.0) + v for name, v in summary.stages.items()}
            print(f"{summary.images} images: pure {summary.images / pure_s:.1f} images/s, "
                  f"audit {summary.images / audit_s:.1f} images/s", flush=True)
        start = time.perf_counter()
        write_report(Path(tmp), summary.rows, {"threshold": detector.calibration.image_threshold}, detector.info)
        report_s = time.perf_counter() - start
    pure, audit = len(paths) / pure_s, len(paths) / audit_s
    sizes = {tuple(a.shape[1:]) for a in arrays}
    body = (
        f"{len(paths)} MTD images (the first {args.n} of the manifest, {len(sizes)} distinct sizes, grey JPEG), "
        f"model `{args.model}` ({detector.config.name}, {'x'.join(map(str, detector.config.image_size))}, "
        f"default settings), batch {args.batch_size}, {args.workers} decoding threads, {torch.get_num_threads()} "
        f"torch threads. Pure and audit alternate every {args.chunk} images (ABBA order) so that both see the same "
        f"load. 5-minute load average at the end: {os.getloadavg()[1]:.1f} on {os.cpu_count()} cores.\n\n"
        "| measure | images/s |\n|---|---|\n"
        f"| pure: `Detector.predict_arrays` on pre-decoded arrays | {pure:.1f} |\n"
        f"| audit: `run_audit` from files (decode, score, thumbnails, overlays, rows flushed) | {audit:.1f} |\n"
        f"| audit / pure | **{audit / pure:.0%}** (goal >= 80%) |\n"
        f"| CPU seconds per image, pure / audit (all threads; less sensitive to other load) | "
        f"{pure_cpu / len(paths):.3f} / {audit_cpu / len(paths):.3f} = **{pure_cpu / audit_cpu:.0%}** |\n"
        f"| inside the audit: time in `predict_arrays` / audit wall time | **{stages['infer'] / audit_s:.0%}** |\n\n"
        f"{summary.anomalous} anomalous at the calibrated threshold (overlays written for those). Stage busy seconds: "
        f"{', '.join(f'{k} {v:.1f}' for k, v in stages.items())} (decode per thread, in parallel with inference). "
        f"report.html for {len(paths)} images: {report_s:.1f} s, written after scoring.\n\n"
        "The audit calls the same `predict_arrays` on the same batches, so a ratio above 100% is noise; its "
        "decoding threads share the cores with inference, which the CPU-seconds row leaves out."
    )
    print(body)
    if not args.no_write:
        write_section("audit", "## Batch audit throughput (issue \"Batch audit\")\n\n" + body)


if __name__ == "__main__":
    main()
