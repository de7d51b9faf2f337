"""`anomaly serve`: run the FastAPI scoring service under uvicorn (see docs/service.md)."""

import os
from typing import Annotated, Optional

import typer

from anomaly.cli.app import app, fail

Opt = typer.Option


@app.command()
def serve(
    model: Annotated[Optional[str], Opt(help="bundle folder, runs:/<id>/model or models:/<name>@<alias> "
                                             "(env ANOMALY_MODEL)")] = None,
    host: Annotated[Optional[str], Opt(help="interface to bind (env ANOMALY_HOST, default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], Opt(help="TCP port (env ANOMALY_PORT, default 8000)")] = None,
    workers: Annotated[Optional[int], Opt(help="worker processes, each with its own model "
                                               "(env ANOMALY_WORKERS, default 1)")] = None,
    backend: Annotated[Optional[str], Opt(help="inference backend: torch | onnxruntime "
                                               "(env ANOMALY_BACKEND, default torch)")] = None,
    log_level: Annotated[str, Opt(help="uvicorn log level")] = "info",
) -> None:
    """Serve a model over HTTP: POST /v1/predict, /v1/heatmap; GET /v1/model, /healthz, /readyz, /metrics, /."""
    import uvicorn
    from pydantic import ValidationError

    from service.config import Settings, get_settings

    # options win over the environment; written back to it so every worker process reads the same
    for name, value in (("MODEL", model), ("HOST", host), ("PORT", port), ("WORKERS", workers),
                        ("BACKEND", backend)):
        if value is not None:
            os.environ[f"ANOMALY_{name}"] = str(value)
    get_settings.cache_clear()
    try:
        settings: Settings = get_settings()
    except ValidationError as error:
        fail(f"invalid service settings: {error}")
    if not settings.model:
        fail("no model to serve: pass --model (a bundle folder, runs:/<id>/model or models:/<name>@<alias>) "
             "or set ANOMALY_MODEL")
    uvicorn.run("service.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=log_level, proxy_headers=True)
