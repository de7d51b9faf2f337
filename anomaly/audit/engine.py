"""The audit pipeline: decode ahead in a worker pool, score in batches, write off the critical path.

    main thread      ──► decode pool (threads, `workers`)  ──► batches of `batch_size` ──► Detector.predict_arrays
    writer thread    ◄── queue ◄── (path, array, prediction | error), in input order
                     ──► overlay / thumbnail / map files, one row appended + flushed to results.csv/.jsonl

`run_audit` opens the results (resuming if asked), runs the local or the Ray engine over what is not
done yet, puts the rows in input order, writes `report.html` and returns an `AuditSummary`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.audit.results import COLUMNS, RESULTS_CSV, RESULTS_JSONL, ResultsWriter
from anomaly.audit.rows import OVERLAYS, Artifacts, error_row, prediction_row, render, save
from anomaly.detector import Detector

Progress = Callable[[int], None]


@dataclass(frozen=True)
class AuditOptions:
    out: Path
    batch_size: int = 16
    workers: int = 2  # decoding threads (local engine) or scoring actors (Ray engine)
    overlays: str = "anomalous"  # "anomalous" | "all" | "none"
    maps: bool = False  # also write raw anomaly maps as .npy
    threshold: float | None = None  # None = the calibrated image threshold
    resume: bool = False
    overwrite: bool = False
    engine: str = "local"  # "local" | "ray"
    ray_address: str | None = None  # None = RAY_ADDRESS or a new local instance

    def __post_init__(self) -> None:
        if self.overlays not in OVERLAYS:
            raise ValueError(f"overlays must be one of {', '.join(OVERLAYS)}, got {self.overlays!r}")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be local or ray, got {self.engine!r}")
        if self.batch_size < 1 or self.workers < 1:
            raise ValueError(f"batch size and workers must be >= 1, got {self.batch_size} and {self.workers}")


@dataclass
class AuditSummary:
    rows: list[dict[str, Any]]  # every row of the results table, in input order
    new: int  # images audited by this run (the others were done before a resume)
    seconds: float  # wall time of this run's scoring
    stages: dict[str, float] = field(default_factory=dict)  # busy seconds per stage (decode per worker)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def images(self) -> int:
        return len(self.rows)

    @property
    def anomalous(self) -> int:
        return sum(r["verdict"] == "anomalous" for r in self.rows)

    @property
    def errors(self) -> int:
        return sum(r["verdict"] == "error" for r in self.rows)

    @property
    def images_per_second(self) -> float:
        return self.new / self.seconds if self.seconds > 0 else 0.0

    @property
    def slowest_stage(self) -> str:
        return max(self.stages, key=self.stages.get) if self.stages else "n/a"


class Sink:
    """The writing end shared by both engines: saves artifacts, appends the row, counts time."""

    def __init__(self, writer: ResultsWriter, progress: Progress | None) -> None:
        self.writer, self.progress = writer, progress
        self.rows: list[dict[str, Any]] = []
        self.seconds = 0.0

    def put(self, row: dict[str, Any], artifacts: Artifacts | None = None) -> None:
        start = time.perf_counter()
        row = save(self.writer.out, row, artifacts) if artifacts else dict(row, overlay=None, map=None)
        row = {c: row.get(c) for c in COLUMNS}
        self.writer.write(row)
        self.rows.append(row)
        self.seconds += time.perf_counter() - start
        if self.progress:
            self.progress(1)


def _decode_ahead(detector: Detector, paths: list[str], workers: int, ahead: int,
                  busy: list[float]) -> Iterator[tuple[str, np.ndarray | None, BaseException | None]]:
    """Decode `paths` in a thread pool, at most `ahead` in flight, yielding in input order."""

    def decode(path: str) -> tuple[str, np.ndarray | None, BaseException | None]:
        start = time.perf_counter()
        try:
            return path, detector.decode(path), None
        except (ValueError, OSError) as error:  # ImageDecodeError is a ValueError
            return path, None, error
        finally:
            busy.append(time.perf_counter() - start)

    with ThreadPoolExecutor(workers, thread_name_prefix="audit-decode") as pool:
        pending: deque = deque()
        todo = iter(paths)
        try:
            for path in todo:
                pending.append(pool.submit(decode, path))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def predict_batch(detector: Detector, arrays: list[np.ndarray], threshold: float | None) -> list:
    """One batch; if it fails, image by image so that one bad image only fails its own row."""
    try:
        return detector.predict_arrays(arrays, threshold=threshold)
    except Exception:  # noqa: BLE001 - isolated below, each failure becomes an error row
        out = []
        for array in arrays:
            try:
                out += detector.predict_arrays([array], threshold=threshold)
            except Exception as error:  # noqa: BLE001
                out.append(error)
        return out


def run_local(detector: Detector, paths: list[str], options: AuditOptions, sink: Sink) -> dict[str, float]:
    """Score `paths` on this machine; rows reach `sink` in input order. Returns busy seconds per stage."""
    info, decode_busy, infer = detector.info, [], 0.0
    work: queue.Queue = queue.Queue(maxsize=4 * options.batch_size)
    failure: list[BaseException] = []

    def write_loop() -> None:
        while (item := work.get()) is not None:
            if failure:
                continue  # keep draining so the producer never blocks
            path, array, result = item
            try:
                if isinstance(result, BaseException):
                    sink.put(error_row(path, result, info))
                else:
                    sink.put(prediction_row(path, array, result, info),
                             render(detector, array, result, overlays=options.overlays, maps=options.maps))
            except BaseException as error:  # noqa: BLE001 - reraised in the main thread
                failure.append(error)

    writer = threading.Thread(target=write_loop, name="audit-writer", daemon=True)
    writer.start()
    pending: list[tuple[str, np.ndarray | None, BaseException | None]] = []

    def flush() -> None:
        nonlocal infer
        arrays = [a for _, a, _ in pending if a is not None]
        start = time.perf_counter()
        predictions = iter(predict_batch(detector, arrays, options.threshold))
        infer += time.perf_counter() - start
        for path, array, error in pending:
            work.put((path, array, error if error is not None else next(predictions)))
        pending.clear()
        if failure:
            raise failure[0]

    decoded = _decode_ahead(detector, paths, options.workers, 2 * options.batch_size, decode_busy)
    try:
        with closing(decoded):  # a failing flush shuts the decode pool down before the error propagates
            for item in decoded:
                pending.append(item)
                if sum(a is not None for _, a, _ in pending) >= options.batch_size:
                    flush()
        flush()
    finally:
        work.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return {"decode": sum(decode_busy) / options.workers, "infer": infer, "write": sink.seconds}


def audit_meta(detector: Detector, options: AuditOptions) -> dict[str, Any]:
    """What a resumed audit must share with the original one."""
    threshold = detector.calibration.image_threshold if options.threshold is None else float(options.threshold)
    return {"model_uri": detector.info["uri"], "model_version": detector.info.get("version"),
            "threshold": threshold}


def run_audit(detector: Detector, paths: list[str], options: AuditOptions, *,
              progress: Progress | None = None, on_start: Callable[[int, int], None] | None = None,
              report: bool = True) -> AuditSummary:
    """Audit `paths` into `options.out`: results table, overlays, maps, report.html.

    on_start(total_to_do, already_done) is called once the resumed rows are known.
    """
    out = Path(options.out)
    with ResultsWriter(out, audit_meta(detector, options), resume=options.resume,
                       overwrite=options.overwrite) as writer:
        todo = [p for p in paths if p not in writer.done]
        if on_start:
            on_start(len(todo), len(paths) - len(todo))
        sink = Sink(writer, progress)
        start = time.perf_counter()
        if options.engine == "ray":
            from anomaly.audit.ray_engine import run_ray

            stages = run_ray(detector, todo, options, sink)
        else:
            stages = run_local(detector, todo, options, sink)
        seconds = time.perf_counter() - start
        rows = writer.finish(paths)
    summary = AuditSummary(rows=rows, new=len(sink.rows), seconds=seconds, stages=stages,
                           files={"results.csv": out / RESULTS_CSV, "results.jsonl": out / RESULTS_JSONL})
    for folder in ("overlays", "maps"):
        if (out / folder).is_dir():
            summary.files[f"{folder}/"] = out / folder
    if report:
        from anomaly.audit.report import write_report

        summary.files["report.html"] = write_report(out, summary.rows, audit_meta(detector, options), detector.info)
    return summary
