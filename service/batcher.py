"""Micro-batching: concurrent requests share one `Detector.predict_arrays` call.

Requests decode their images on the thread pool, then `submit` them. One worker task takes the
first queued image, adds whatever else is queued, and, while other requests are still decoding
(`incoming()` counts them), waits up to `max_wait` for those to join, up to `max_batch_size` images.
A request arriving alone is never delayed; under load, the images that arrive while a batch runs
form the next one. Inference runs on one dedicated thread (torch uses every core inside it), so the
event loop keeps accepting and decoding requests meanwhile.

The worker never dies of an error: whatever fails while a batch is formed or run (the model, a
metrics hook) fails that batch's requests with the error, is logged, and the next batch is served.
`stop()` fails every request not yet answered, queued or already taken into a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from anomaly.detector import Detector, Prediction

log = logging.getLogger("service.batcher")


@dataclass
class _Job:
    detector: Detector
    array: np.ndarray  # (C, H, W) float32 in [0, 1]
    threshold: float | None
    future: asyncio.Future = field(repr=False)


def _fail(jobs: list[_Job], error: BaseException) -> None:
    """Answer every job not answered yet with `error` (a client that went away cancelled its own)."""
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)


class MicroBatcher:
    def __init__(self, max_batch_size: int = 16, max_wait: float = 0.005,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait  # seconds
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._taken: list[_Job] = []  # the batch being formed or run: out of the queue, not yet answered
        self._incoming = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._task: asyncio.Task | None = None
        self._stopped = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    @property
    def running(self) -> bool:
        """The worker task is alive (started, not stopped, not dead)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop the worker; every request not answered yet (queued, or in the batch being formed or run)
        gets a RuntimeError instead of hanging."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending = self._taken + [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        self._taken = []
        _fail(pending, RuntimeError("the service is shutting down; retry on another replica"))
        self._executor.shutdown(wait=True)

    @contextlib.contextmanager
    def incoming(self, n: int = 1) -> Iterator[None]:
        """Mark `n` images as on their way (being decoded), so a forming batch waits for them."""
        self._incoming += n
        try:
            yield
        finally:
            self._incoming -= n

    async def run(self, fn: Callable, *args):
        """Run `fn(*args)` on the inference thread (warm-up, reload), in turn with the batches."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, detector: Detector, arrays: list[np.ndarray],
                     threshold: float | None = None) -> list[Prediction]:
        """Score `arrays` with `detector` in whatever batch they land in; one Prediction each, in order."""
        if self._stopped or not self.running:
            raise RuntimeError("the inference worker is not running (the service is starting or shutting "
                               "down); retry in a few seconds or on another replica")
        loop = asyncio.get_running_loop()
        jobs = [_Job(detector, array, threshold, loop.create_future()) for array in arrays]
        for job in jobs:
            self._queue.put_nowait(job)
        return list(await asyncio.gather(*(job.future for job in jobs)))

    async def _collect(self) -> list[_Job]:
        """The next batch: one job, plus what is queued, plus (briefly) what is still being decoded.
        Jobs go into `self._taken` as they leave the queue, so `stop()` can answer them."""
        loop = asyncio.get_running_loop()
        batch = self._taken
        batch.append(await self._queue.get())
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if self._incoming <= 0 or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        """Batch after batch until cancelled; an error fails its batch only (CancelledError is no
        Exception: it ends the loop, and `stop()` answers the jobs taken)."""
        while True:
            self._taken = []
            try:
                await self._serve(await self._collect())
            except Exception as error:
                log.exception("a micro-batch of %d images failed outside the model; failing its requests "
                              "and serving on", len(self._taken))
                _fail(self._taken, error)
            else:  # every job should have its answer by now; if one has none, it must not hang
                _fail(self._taken, RuntimeError("the inference worker returned no result for this image "
                                                "(a bug in the service); retry"))

    async def _serve(self, batch: list[_Job]) -> None:
        if self.on_batch is not None:
            self.on_batch(len(batch))
        groups: dict[tuple[int, float | None], list[_Job]] = {}
        for job in batch:  # one predict_arrays call per (model, threshold); normally just one
            groups.setdefault((id(job.detector), job.threshold), []).append(job)
        for jobs in groups.values():
            await self._execute(jobs)

    async def _execute(self, jobs: list[_Job]) -> None:
        detector, threshold = jobs[0].detector, jobs[0].threshold
        arrays = [job.array for job in jobs]
        try:
            predictions = await self.run(lambda: detector.predict_arrays(arrays, threshold=threshold))
        except Exception as error:  # a model failure fails this batch only; the worker keeps serving
            _fail(jobs, error)
            return
        for job, prediction in zip(jobs, predictions):
            if not job.future.done():  # a client that went away cancels its future
                job.future.set_result(prediction)
