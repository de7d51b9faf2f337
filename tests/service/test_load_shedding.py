"""The process-wide pixel budget under concurrent load: the server's peak RSS stays within the budget's
bound, the requests past it get 503 with Retry-After (counted in /metrics), and nothing else fails.

The issue's probe, scaled down 4x per side: 4 concurrent requests, each with four flat PNGs (2000x2000
here, 4000x4000 there) and heatmap=png. The budget holds one such request (16 Mpx) at a time.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time

import httpx
import psutil
from PIL import Image

from service.config import BYTES_PER_PIXEL_IN_FLIGHT, Settings

from .conftest import LIMITS, start
from .test_metrics_concurrency import _metric

SIDE, PER_REQUEST, CONCURRENT = 2000, 4, 4
BUDGET = SIDE * SIDE * PER_REQUEST


def _flat_png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (SIDE, SIDE), 128).save(buf, "PNG")  # ~20 kB that decode to 4 Mpx
    return buf.getvalue()


class PeakRss:
    """The highest RSS of this process (the server's: it runs in a thread here), sampled every 5 ms."""

    def __init__(self) -> None:
        self.process, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def test_concurrent_load_is_shed_past_the_pixel_budget_and_rss_stays_bounded(bundle):
    settings = Settings(model=str(bundle), **dict(LIMITS, max_request_bytes=2**20, max_pixels=SIDE * SIDE,
                                                  max_request_pixels=BUDGET, max_pixels_in_flight=BUDGET))
    files = [("files", (f"{i}.png", _flat_png())) for i in range(PER_REQUEST)]

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v1/predict", files=files, params={"heatmap": "png"})
                                          for _ in range(CONCURRENT)))

    for live in start(settings):
        httpx.post(live.url + "/v1/predict", files=files[:1], timeout=60)  # first-call allocations
        baseline = psutil.Process().memory_info().rss
        with PeakRss() as rss:
            responses = asyncio.run(burst(live.url))
        metrics = httpx.get(live.url + "/metrics").text

    statuses = sorted(r.status_code for r in responses)
    growth = rss.peak - baseline
    bound = BYTES_PER_PIXEL_IN_FLIGHT * BUDGET
    print(f"\nstatuses {statuses}; peak RSS {rss.peak / 2**20:.0f} MiB, {growth / 2**20:.0f} MiB over the "
          f"baseline {baseline / 2**20:.0f} MiB; bound {BYTES_PER_PIXEL_IN_FLIGHT} B x {BUDGET / 1e6:g} Mpx = "
          f"{bound / 2**20:.0f} MiB")
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}  # no 5xx but shedding
    for shed in (r for r in responses if r.status_code == 503):
        assert shed.headers["Retry-After"] == "1" and shed.json()["code"] == "overloaded"
    assert all(r["score"] is not None for ok in responses if ok.status_code == 200 for r in ok.json()["results"])
    assert _metric(metrics, "anomaly_shed_requests_total") == statuses.count(503)
    assert _metric(metrics, "anomaly_pixels_in_flight") == 0  # every reservation was given back
    assert growth < bound
