"""The served model: loaded and warmed up once in the lifespan, reloaded on request or by polling.

A model that fails to load or to warm up fails the startup: the cause is logged, and uvicorn exits
with status 3 instead of serving a model that cannot score.

A reload loads and warms the new model beside the old one and swaps them in one assignment, so
requests in flight finish on the model they started with; a failed reload keeps the old model,
records the failure (`last_reload`, metric `anomaly_model_reloads_total{result="failed"}`) and
answers 502 `reload_failed`. Model URIs are parsed by `anomaly.model_uri` (no mlflow) and resolved
in the registry only by `anomaly.tracking` (the one module that touches mlflow), imported only when
the URI is a registry one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from anomaly.detector import Detector
from anomaly.model_uri import parse_model_uri
from service.batcher import MicroBatcher
from service.config import Settings
from service.errors import ServiceError
from service.limits import PixelBudget
from service.metrics import Metrics
from service.schemas import ModelRefPublic, ReloadPublic, ReloadStatusPublic

T = TypeVar("T")
log = logging.getLogger("service.model")


async def on_own_thread(fn: Callable[[], T]) -> T:
    """`fn()` on a thread of its own that ends with it. Building a model runs torch, and a thread that has run
    torch keeps an OpenMP pool: with a second pool beside the inference thread's, more pool threads than cores
    make both pools sleep between operations instead of spinning, and a prediction took 1.6-1.7x as long on 2
    cores (experiments/RESULTS.md, "Service")."""
    with ThreadPoolExecutor(1, thread_name_prefix="model-load") as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)


def bundle_fingerprint(uri: str) -> str | None:
    """Content hash of a local bundle folder (None for registry URIs, whose version identifies them)."""
    path = Path(uri)
    if parse_model_uri(uri) is not None or not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def version_label(detector: Detector) -> str:
    """The model version for metric labels: the registry version, or "local" for a bundle folder."""
    return str(detector.info.get("version") or "local")


def model_ref(detector: Detector) -> ModelRefPublic:
    info = detector.info
    return ModelRefPublic(uri=str(info.get("uri") or detector.source),
                          **{k: None if info.get(k) is None else str(info[k]) for k in ("name", "version", "run_id")})


class ModelService:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.batcher = MicroBatcher(settings.max_batch_size, settings.max_wait_ms / 1000,
                                    on_batch=metrics.batch_size.observe)
        self.budget = PixelBudget(settings.max_pixels_in_flight, metrics)
        self._detector: Detector | None = None
        self.fingerprint: tuple | None = None
        self.loaded_at = 0.0
        self.warmed_up = False
        self.last_reload: ReloadStatusPublic | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    @property
    def ready(self) -> bool:
        """Loaded, warmed up, and the inference worker is alive (else requests would hang)."""
        return self.warmed_up and self.batcher.running

    @property
    def detector(self) -> Detector:
        if self._detector is None:  # the lifespan loads it before the server accepts a request
            raise RuntimeError("no model is loaded: start() has not run or failed")
        return self._detector

    def _load(self) -> tuple[Detector, tuple]:
        uri = self.settings.model
        detector = Detector.load(uri, device=self.settings.device, backend=self.settings.backend)
        info = detector.info
        return detector, (info.get("version"), info.get("run_id"), bundle_fingerprint(uri))

    def _warm_up(self, detector: Detector) -> None:
        """One image, then one full batch, of blank images at the model's size: allocations, kernels
        (oneDNN builds them per batch size) and lazy imports, before the first request pays for them."""
        h, w = detector.config.image_size
        blank = np.zeros((detector.config.channels, h, w), np.float32)
        for size in sorted({1, self.settings.max_batch_size}):
            detector.predict_arrays([blank] * size)

    def _install(self, detector: Detector, fingerprint: tuple) -> None:
        self._detector, self.fingerprint, self.loaded_at = detector, fingerprint, time.time()
        self.metrics.set_model({**detector.info, "version": version_label(detector)})

    async def start(self) -> None:
        """Load the model and warm it up; either failing fails startup loudly, with the cause logged."""
        if not self.settings.model:
            raise RuntimeError("no model to serve: set ANOMALY_MODEL or pass `anomaly serve --model URI` "
                               "(a bundle folder, runs:/<id>/model or models:/<name>@<alias>)")
        self.batcher.start()
        detector, fingerprint = await on_own_thread(self._load)
        if self.settings.warmup:
            try:
                await self.batcher.run(self._warm_up, detector)
            except Exception as error:
                message = (f"the model {self.settings.model} failed its warm-up ({type(error).__name__}: {error}); "
                           "not serving it: fix or replace the model")
                log.error(message)
                raise RuntimeError(message) from error
        self._install(detector, fingerprint)
        self.warmed_up = True
        log.info("model %s ready", self.settings.model)
        if self.settings.reload_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._poll(), name="reload-poll"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.batcher.stop()

    async def reload(self, *, only_if_changed: bool = False) -> ReloadPublic:
        """Load the URI again (a moved registry alias, a replaced bundle folder); swap if it loads."""
        async with self._lock:
            previous = model_ref(self.detector)
            try:
                if only_if_changed and await run_in_threadpool(self._unchanged):
                    return ReloadPublic(changed=False, previous=previous, current=previous)
                detector, fingerprint = await on_own_thread(self._load)
                changed = fingerprint != self.fingerprint
                if changed or not only_if_changed:
                    await self.batcher.run(self._warm_up, detector)
                    self._install(detector, fingerprint)
            except Exception as error:  # anything: the old model keeps serving
                detail = (f"reloading {self.settings.model} failed ({type(error).__name__}: {error}); still "
                          f"serving version {previous.version or 'local'} loaded at {self.loaded_at:.0f}; "
                          "fix the model source and reload again")
                self.last_reload = ReloadStatusPublic(ok=False, at=time.time(), detail=detail)
                self.metrics.reloads.labels("failed").inc()
                log.warning(detail)
                raise ServiceError(502, "reload_failed", detail) from error
            current = model_ref(self.detector)
            self.last_reload = ReloadStatusPublic(
                ok=True, at=time.time(),
                detail=f"{'changed' if changed else 'unchanged'}: version {current.version or 'local'}")
            self.metrics.reloads.labels("changed" if changed else "unchanged").inc()
            return ReloadPublic(changed=changed, previous=previous, current=current)

    def _unchanged(self) -> bool:
        """Cheap check before a polled reload: same folder content, a pinned URI, or the alias still on
        our version. `models:/<name>/latest` is never known unchanged (a full reload compares versions)."""
        uri, (version, _, digest) = self.settings.model, self.fingerprint
        if digest is not None:
            return bundle_fingerprint(uri) == digest
        parsed = parse_model_uri(uri)
        if parsed is None or parsed.kind == "run" or (parsed.kind == "version" and parsed.ref.isdigit()):
            return True  # pinned: never changes
        if parsed.kind != "alias":
            return False
        from anomaly import tracking

        try:
            return tracking.alias_version(uri) == version
        except Exception:  # the registry is unreachable or the alias is gone: let the reload report it
            return False

    async def _poll(self) -> None:
        """Every `reload_interval_s`: reload if the source changed; failures are logged, never fatal."""
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            with contextlib.suppress(ServiceError):
                await self.reload(only_if_changed=True)
