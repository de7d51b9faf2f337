"""`anomaly serve`: run the FastAPI scoring service under uvicorn (see docs/service.md)."""

import os
from typing import Annotated, Optional

import typer

from anomaly.cli.app import app, check_port, fail, user_errors

Opt = typer.Option


@app.command()
def serve(
    model: Annotated[Optional[str], Opt(help="bundle folder, runs:/<id>/model or models:/<name>@<alias> "
                                             "(default: env ANOMALY_MODEL)")] = None,
    host: Annotated[Optional[str], Opt(help="interface to bind (default: env ANOMALY_HOST, else 127.0.0.1)")] = None,
    port: Annotated[Optional[int], Opt(min=0, max=65535, help="TCP port, 0 for any free one "
                                                               "(default: env ANOMALY_PORT, else 8000)")] = None,
    workers: Annotated[Optional[int], Opt(min=1, help="worker processes, each with its own model "
                                               "(default: env ANOMALY_WORKERS, else 1)")] = None,
    backend: Annotated[Optional[str], Opt(help="inference backend: torch | onnxruntime "
                                               "(default: env ANOMALY_BACKEND, else torch)")] = None,
    log_level: Annotated[str, Opt(help="uvicorn log level: critical | error | warning | info | debug | "
                                       "trace")] = "info",
) -> None:
    """Serve a model over HTTP: POST /v1/predict, /v1/heatmap; GET /v1/model, /healthz, /readyz, /metrics, /."""
    import uvicorn
    from pydantic import ValidationError

    from service.config import Settings, describe, get_settings

    if log_level not in uvicorn.config.LOG_LEVELS:
        fail(f"unknown --log-level {log_level!r}; expected one of {' | '.join(uvicorn.config.LOG_LEVELS)}")
    # options win over the environment; written back to it so every worker process reads the same
    for name, value in (("MODEL", model), ("HOST", host), ("PORT", port), ("WORKERS", workers),
                        ("BACKEND", backend)):
        if value is not None:
            os.environ[f"ANOMALY_{name}"] = str(value)
    get_settings.cache_clear()
    try:
        settings: Settings = get_settings()
    except ValidationError as error:  # from ANOMALY_* variables: one line naming each
        fail(f"invalid service settings: {describe(error)}")
    if not settings.model:
        fail("no model to serve: pass --model (a bundle folder, runs:/<id>/model or models:/<name>@<alias>) "
             "or set ANOMALY_MODEL")
    check_port(settings.host, settings.port)
    from anomaly.detector import Detector  # after the quick checks: it loads torch

    with user_errors(f"cannot serve {settings.model}: "):  # what the service's startup would fail on, as one line
        Detector.load(settings.model, backend=settings.backend, device="cpu")
    uvicorn.run("service.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=log_level, proxy_headers=True,
                http="service.slow_headers:HeaderTimeoutProtocol")  # times request headers (slowloris)
