"""Prometheus metrics on a registry of the app's own (so several apps can live in one process).

`MetricsMiddleware` counts every HTTP request by route template (never the raw path, which would
let a scanner create unbounded label values), method and status, and times it.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("anomaly_http_requests_total", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("anomaly_http_request_duration_seconds", "HTTP request latency",
                                 ["route", "method", "status"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.batch_size = Histogram("anomaly_batch_size", "images per inference micro-batch",
                                    registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128))
        self.score = Histogram("anomaly_normalised_score", "normalised image scores (0.5 = threshold)",
                               registry=self.registry, buckets=tuple(i / 10 for i in range(1, 11)))
        self.images = Counter("anomaly_images_scored_total", "images scored, by model version",
                              ["model_version"], registry=self.registry)
        self.anomalies = Counter("anomaly_anomalies_total", "images judged anomalous, by model version",
                                 ["model_version"], registry=self.registry)
        self.image_errors = Counter("anomaly_image_errors_total", "images refused, by error code",
                                    ["code"], registry=self.registry)
        self.reloads = Counter("anomaly_model_reloads_total", "model reload attempts by result",
                               ["result"], registry=self.registry)
        self.shed = Counter("anomaly_shed_requests_total", "requests refused with 503 because the pixels in "
                            "flight would pass ANOMALY_MAX_PIXELS_IN_FLIGHT", registry=self.registry)
        self.pixels_in_flight = Gauge("anomaly_pixels_in_flight", "decoded pixels held by requests in flight",
                                      registry=self.registry)
        self.model_info = Gauge("anomaly_model_info", "the model being served (value 1)",
                                ["uri", "name", "version"], registry=self.registry)

    def observe_prediction(self, version: str, normalised_score: float, is_anomalous: bool) -> None:
        self.score.observe(normalised_score)
        self.images.labels(version).inc()
        if is_anomalous:
            self.anomalies.labels(version).inc()

    def set_model(self, info: dict) -> None:
        self.model_info.clear()
        self.model_info.labels(*(str(info.get(k) or "") for k in ("uri", "name", "version"))).set(1)


class MetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed bodies)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            labels = (route, scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
