"""`create_app()`: the FastAPI application. The model is loaded in the lifespan, never at import.

    uvicorn --factory service.app:create_app     # settings from ANOMALY_* environment variables
    anomaly serve --model runs/sample    # the same, with options
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import ValidationError

import anomaly
from service.auth import ApiKeyMiddleware
from service.config import Settings, describe, get_settings
from service.docs import install_docs
from service.errors import install_error_handlers
from service.limits import BodyDeadlineMiddleware, BodyLimitMiddleware
from service.metrics import Metrics, MetricsMiddleware
from service.model import ModelService
from service.routes import build_router

log = logging.getLogger("service")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: ModelService = app.state.service
    try:  # a failed start is stopped too: the inference thread ends, shutdown does not fail
        await service.start()
        log.info("serving %s", service.settings.model)
        yield
    finally:
        await service.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment). Each app has its own model, batcher and
    metrics registry, so several can run in one process (tests)."""
    if settings is None:
        try:
            settings = get_settings()
        except ValidationError as error:  # plain `uvicorn --factory`: one line, exit 1, no traceback
            raise SystemExit(f"error: invalid service settings: {describe(error)}") from None
    app = FastAPI(title="anomaly", version=anomaly.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Image anomaly scoring with autoencoders: scores, verdicts, regions and heatmaps. "
                              "Send images as multipart `files`; errors are JSON {code, detail}.")
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.service = ModelService(settings, app.state.metrics)
    install_error_handlers(app)
    app.include_router(build_router(settings))
    install_docs(app)
    # outermost last: metrics see every status; the key is checked before the body is read or waited for
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(BodyDeadlineMiddleware, total_s=settings.body_timeout_s, idle_s=settings.body_idle_timeout_s)
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, key=settings.api_key.get_secret_value())
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
