"""`create_app()`: the FastAPI application. The model is loaded in the lifespan, never at import.

    uvicorn --factory service.app:create_app     # settings from ANOMALY_* environment variables
    anomaly serve --model runs/sample    # the same, with options
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import anomaly
from service.config import Settings, get_settings
from service.errors import install_error_handlers
from service.limits import BodyLimitMiddleware
from service.metrics import Metrics, MetricsMiddleware
from service.model import ModelService
from service.routes import build_router

log = logging.getLogger("service")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: ModelService = app.state.service
    await service.start()
    log.info("serving %s", service.settings.model)
    try:
        yield
    finally:
        await service.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment). Each app has its own model, batcher and
    metrics registry, so several can run in one process (tests)."""
    settings = settings or get_settings()
    app = FastAPI(title="anomaly", version=anomaly.__version__, lifespan=lifespan,
                  description="Image anomaly scoring with autoencoders: scores, verdicts, regions and heatmaps. "
                              "Send images as multipart `files`; errors are JSON {code, detail}.")
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.service = ModelService(settings, app.state.metrics)
    install_error_handlers(app)
    app.include_router(build_router(settings))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: sees every status
    return app
