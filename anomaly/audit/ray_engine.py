"""`--engine ray`: the same scoring through Ray Data, for audits larger than one machine.

    paths ──► ray.data.from_items ──► map_batches(AuditScorer, actor pool of `workers`, `batch_size`)
          ──► iter_batches on the driver ──► the same Sink as the local engine (rows, overlays, report)

Each actor loads the Detector once (by URI: a bundle folder every node can read, or an MLflow
`models:/` / `runs:/` URI reachable from every node, pinned to the version the driver resolved so
that a moving alias cannot split the audit between versions) and decodes, scores and renders its batches;
the driver only writes, so results, resume and report are identical to the local engine's.
Where Ray runs: `options.ray_address`, else `RAY_ADDRESS`, else a cluster started with
`ray start --head` on this machine, else a new local instance (see docs/audit.md, docs/deploy.md).
A cluster's workers start with their node's environment, not the driver's: for a registry URI the
actors are given the driver's MLflow tracking URI.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pandas as pd

from anomaly.audit.engine import AuditOptions, Sink, predict_batch
from anomaly.audit.rows import Artifacts, error_row, prediction_row, render
from anomaly.detector import Detector
from anomaly.model_uri import parse_model_uri


class AuditScorer:
    """Ray Data actor: holds one Detector; a pandas batch with a `path` column (os.fsencode'd bytes, as
    Arrow strings must be UTF-8) -> one output row per path: `row` (the results row as ASCII JSON) and
    the encoded thumbnail / overlay / map (bytes or None)."""

    def __init__(self, model_uri: str, backend: str, info: dict[str, Any], threshold: float | None,
                 overlays: str, maps: bool) -> None:
        self.detector = Detector.load(model_uri, backend=backend)
        self.info, self.threshold, self.overlays, self.maps = info, threshold, overlays, maps

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        decoded: list[tuple[str, Any]] = []
        for path in map(os.fsdecode, batch["path"]):
            try:
                decoded.append((path, self.detector.decode(path)))
            except (ValueError, OSError) as error:
                decoded.append((path, error))
        arrays = [a for _, a in decoded if not isinstance(a, BaseException)]
        predictions = iter(predict_batch(self.detector, arrays, self.threshold))
        records = []
        for path, array in decoded:
            result = array if isinstance(array, BaseException) else next(predictions)
            if isinstance(result, BaseException):
                row, artifacts = error_row(path, result, self.info), Artifacts()
            else:
                row = prediction_row(path, array, result, self.info)
                artifacts = render(self.detector, array, result, overlays=self.overlays, maps=self.maps)
            records.append({"row": json.dumps(row), "thumb_jpeg": artifacts.thumb_jpeg,
                            "overlay_png": artifacts.overlay_png, "map_npy": artifacts.map_npy})
        return pd.DataFrame.from_records(records, columns=["row", "thumb_jpeg", "overlay_png", "map_npy"])


def _bytes(value: Any) -> bytes | None:
    """A binary cell as bytes; missing values come back from Arrow as None, NaN or pd.NA."""
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def model_uri(detector: Detector) -> str:
    """The URI actors load: the exact version the driver loaded (`models:/<name>/<version>` even when
    the audit was asked for an alias, which may move mid-audit), a bundle folder made absolute."""
    return detector.info.get("pinned") or os.path.abspath(detector.source)


def actor_environment(uri: str) -> dict[str, str]:
    """Environment variables the actors need to load `uri`: the driver's tracking store for a registry URI
    (`runs:/`, `models:/`), nothing for a bundle folder."""
    if parse_model_uri(uri) is None:
        return {}
    from anomaly.tracking import tracking_uri

    return {"MLFLOW_TRACKING_URI": tracking_uri()}


def run_ray(detector: Detector, paths: list[str], options: AuditOptions, sink: Sink) -> dict[str, float]:
    """Score `paths` with Ray Data; rows reach `sink` in input order. Returns seconds per stage."""
    import ray

    if not paths:
        return {}
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows in input order, as the local engine
        context.enable_progress_bars = False  # the CLI draws its own
        uri = model_uri(detector)
        env = actor_environment(uri)
        dataset = ray.data.from_items([{"path": os.fsencode(p)} for p in paths]).map_batches(
            AuditScorer, batch_size=options.batch_size, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=options.workers), num_cpus=1,
            **({"runtime_env": {"env_vars": env}} if env else {}),
            fn_constructor_kwargs={"model_uri": uri, "backend": detector.backend,
                                   "info": detector.info,
                                   "threshold": options.threshold, "overlays": options.overlays,
                                   "maps": options.maps})
        start = time.perf_counter()
        for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
            for record in batch.itertuples(index=False):
                artifacts = Artifacts(*(_bytes(v) for v in (record.thumb_jpeg, record.overlay_png, record.map_npy)))
                sink.put(json.loads(record.row), artifacts)
        return {"ray scoring": time.perf_counter() - start - sink.seconds, "write": sink.seconds}
    finally:
        if started_here:
            ray.shutdown()
