"""Concurrency (micro-batches form, zero errors), Prometheus metrics, and the batcher on its own."""

from __future__ import annotations

import asyncio
import re
import threading

import httpx
import numpy as np

from service.batcher import MicroBatcher

from .conftest import NORMAL_JPG


def _metric(text: str, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}(?:{{(.*)}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_200_requests_at_16_in_flight_batch_together_without_errors(server):
    data = NORMAL_JPG.read_bytes()
    before = httpx.get(server.url + "/metrics").text

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
            gate = asyncio.Semaphore(16)

            async def one(i: int) -> int:
                async with gate:
                    response = await client.post("/v1/predict", files={"files": (f"{i}.jpg", data)})
                    return response.status_code if response.json()["results"][0]["score"] is not None else -1

            return await asyncio.gather(*(one(i) for i in range(200)))

    statuses = asyncio.run(run())
    assert statuses == [200] * 200
    after = httpx.get(server.url + "/metrics").text
    batches = _metric(after, "anomaly_batch_size_count") - _metric(before, "anomaly_batch_size_count")
    images = _metric(after, "anomaly_batch_size_sum") - _metric(before, "anomaly_batch_size_sum")
    assert images == 200 and batches < 200  # some batches held more than one request
    assert _metric(after, "anomaly_http_requests_total", route="/v1/predict", status="200") >= 200


def test_metrics_count_routes_statuses_scores_and_anomalies(client):
    client.post("/v1/predict", files={"files": ("a.jpg", NORMAL_JPG.read_bytes())}, params={"threshold": 1e-6})
    client.post("/v1/predict", files={"files": ("e.png", b"")})
    client.get("/no/such/route")
    text = client.get("/metrics").text
    assert _metric(text, "anomaly_http_requests_total", route="/v1/predict", method="POST", status="400") >= 1
    assert _metric(text, "anomaly_http_requests_total", route="unmatched", status="404") >= 1
    assert _metric(text, "anomaly_http_request_duration_seconds_count", route="/v1/predict", status="200") >= 1
    assert _metric(text, "anomaly_anomalies_total", model_version="local") >= 1  # threshold 1e-6: anomalous
    assert _metric(text, "anomaly_normalised_score_count") >= 1
    assert _metric(text, "anomaly_image_errors_total", code="empty_file") >= 1
    assert "/no/such/route" not in text  # raw paths never become labels


class _FakeDetector:
    """Records the batch sizes it was called with; predicts the array's mean."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_arrays(self, arrays, threshold=None):
        self.calls.append(len(arrays))
        return [float(a.mean()) + (threshold or 0) for a in arrays]


def test_batcher_groups_concurrent_requests_and_keeps_order():
    async def run():
        sizes: list[int] = []
        batcher = MicroBatcher(max_batch_size=4, max_wait=0.05, on_batch=sizes.append)
        batcher.start()
        fake = _FakeDetector()
        arrays = [np.full((1, 2, 2), i, np.float32) for i in range(10)]
        alone = await batcher.submit(fake, arrays[:1])  # nobody else incoming: no waiting
        together = await asyncio.gather(*(batcher.submit(fake, [a]) for a in arrays))
        shifted = await batcher.submit(fake, arrays[:2], threshold=100.0)
        await batcher.stop()
        return alone, together, shifted, sizes, fake.calls

    alone, together, shifted, sizes, calls = asyncio.run(run())
    assert alone == [0.0] and [r for [r] in together] == [float(i) for i in range(10)]
    assert shifted == [100.0, 101.0]
    assert sizes[1:4] == [4, 4, 2] and max(calls) == 4


def test_batcher_waits_only_for_requests_being_decoded():
    async def run():
        batcher = MicroBatcher(max_batch_size=8, max_wait=0.5)
        batcher.start()
        fake = _FakeDetector()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.submit(fake, [np.zeros((1, 2, 2), np.float32)])
        alone = loop.time() - start

        async def late(delay: float):
            with batcher.incoming():
                await asyncio.sleep(delay)  # "decoding"
            return await batcher.submit(fake, [np.ones((1, 2, 2), np.float32)])

        with batcher.incoming():  # a second request is on its way when the first is submitted
            first = asyncio.ensure_future(batcher.submit(fake, [np.zeros((1, 2, 2), np.float32)]))
            second = asyncio.ensure_future(late(0.05))
            await asyncio.sleep(0)
        await asyncio.gather(first, second)
        await batcher.stop()
        return alone, fake.calls

    alone, calls = asyncio.run(run())
    assert alone < 0.25 and calls == [1, 2]  # alone: not held for max_wait; then both in one batch


def test_batcher_survives_a_failure_outside_the_model():
    async def run():
        failures = [RuntimeError("metrics backend down")]

        def on_batch(size: int) -> None:  # raises once, then works
            if failures:
                raise failures.pop()

        batcher = MicroBatcher(max_batch_size=4, max_wait=0.01, on_batch=on_batch)
        batcher.start()
        fake = _FakeDetector()
        try:
            failed = await asyncio.wait_for(batcher.submit(fake, [np.ones((1, 2, 2), np.float32)]), 5)
        except RuntimeError as error:
            failed = error
        served = await asyncio.wait_for(batcher.submit(fake, [np.ones((1, 2, 2), np.float32)]), 5)
        running = batcher.running
        await batcher.stop()
        return failed, served, running

    failed, served, running = asyncio.run(run())
    assert isinstance(failed, RuntimeError) and "metrics backend down" in str(failed)
    assert served == [1.0] and running


class _SlowDetector(_FakeDetector):
    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def predict_arrays(self, arrays, threshold=None):
        self.started.set()
        self.release.wait(10)
        return super().predict_arrays(arrays, threshold)


def test_stop_answers_jobs_being_collected_or_run():
    async def run():
        outcomes = []
        for stage in ("collecting", "running"):
            batcher = MicroBatcher(max_batch_size=8, max_wait=30)
            batcher.start()
            slow = _SlowDetector()
            with batcher.incoming(1 if stage == "collecting" else 0):
                job = asyncio.ensure_future(batcher.submit(slow, [np.zeros((1, 2, 2), np.float32)]))
                if stage == "collecting":  # out of the queue, waiting up to 30 s for the image being decoded
                    await asyncio.sleep(0.05)
                else:  # out of the queue, inside predict_arrays; the thread ends after stop() answered
                    await asyncio.to_thread(slow.started.wait, 5)
                    threading.Timer(0.2, slow.release.set).start()
                await batcher.stop()
            try:
                outcomes.append(await asyncio.wait_for(job, 5))
            except (RuntimeError, TimeoutError) as error:
                outcomes.append(error)
        return outcomes

    for outcome in asyncio.run(run()):
        assert isinstance(outcome, RuntimeError) and "shutting down" in str(outcome), outcome


def test_unexpected_error_is_a_counted_json_500_and_the_next_request_works(client, server, monkeypatch):
    batcher = server.app.state.service.batcher
    failures = [RuntimeError("injected fault")]

    def on_batch(size: int, observe=batcher.on_batch) -> None:
        if failures:
            raise failures.pop()
        observe(size)

    monkeypatch.setattr(batcher, "on_batch", on_batch)
    files = {"files": ("a.jpg", NORMAL_JPG.read_bytes())}
    failed = client.post("/v1/predict", files=files)
    assert failed.status_code == 500 and failed.headers["content-type"] == "application/json"
    assert failed.json()["code"] == "internal_error" and "RuntimeError" in failed.json()["detail"]
    assert client.post("/v1/predict", files=files).status_code == 200
    assert client.get("/readyz").status_code == 200
    text = client.get("/metrics").text
    assert _metric(text, "anomaly_http_requests_total", route="/v1/predict", status="500") >= 1
