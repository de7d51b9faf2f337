"""`--mlflow`: log one audit as an MLflow run (counts, anomaly rate and score quantiles as metrics, the
results table and report as artifacts, the model as tags).

Built on `anomaly.tracking` (the one module that imports mlflow: store, experiment, run, params,
metrics, artifacts), imported inside the function so that `anomaly audit` without --mlflow never loads mlflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTILES = (0.5, 0.9, 0.95, 0.99)


def audit_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Counts, anomaly rate (anomalous / scored) and score quantiles of the results rows."""
    scores = np.asarray([r["score"] for r in rows if r.get("score") is not None], dtype=np.float64)
    anomalous = sum(r["verdict"] == "anomalous" for r in rows)
    metrics = {"images": len(rows), "anomalous": anomalous, "errors": sum(r["verdict"] == "error" for r in rows),
               "scored": int(scores.size), "anomaly_rate": anomalous / scores.size if scores.size else 0.0}
    if scores.size:
        metrics |= {f"score_p{round(q * 100)}": float(np.quantile(scores, q)) for q in QUANTILES}
        metrics |= {"score_min": float(scores.min()), "score_max": float(scores.max())}
    return {k: float(v) for k, v in metrics.items()}


def log_audit(summary: Any, info: dict[str, Any], params: dict[str, Any], *, experiment: str = "anomaly-audit",
              run_name: str | None = None) -> str:
    """Log `summary` (an engine.AuditSummary) as a run of `experiment`; returns the run id.
    The store is anomaly.tracking's: MLFLOW_TRACKING_URI, else ./mlflow.db."""
    from anomaly import tracking

    tags = {"anomaly.kind": "audit", "model.uri": str(info.get("uri") or ""), "model.name": str(info.get("name") or ""),
            "model.version": "" if info.get("version") is None else str(info["version"]),
            "model.run_id": str(info.get("run_id") or "")}
    with tracking.start_run(experiment, run_name or "audit", tags) as run_id:
        tracking.log_params({k: v for k, v in params.items() if v is not None})
        tracking.log_metrics(audit_metrics(summary.rows) | {"images_per_second": summary.images_per_second})
        tracking.log_artifacts([summary.files[name] for name in ("results.csv", "results.jsonl", "report.html")
                                if name in summary.files], "audit")
    return run_id
