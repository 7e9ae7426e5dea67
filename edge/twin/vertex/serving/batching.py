"""Dynamic batching: concurrent requests run through the model together."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.twin.errors import TwinError, Unavailable
from edge.twin.vertex.serving.errors import first_line

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

RECENT_BATCHES = 8  # how many batches back the expected batch size looks


@dataclass(eq=False)
class _Pending:
    inputs: dict[str, np.ndarray]
    size: int
    shapes: tuple  # trailing shapes; only requests with equal shapes share a batch
    future: asyncio.Future


class DynamicBatcher:
    """Runs concurrent requests through the model together, one batch at a time.

    Used from one event loop. A request joins a queue; while the model is idle, the queue
    is drained batch by batch: the oldest request and the queued ones with the same
    trailing shapes, up to `max_batch` instances. A batch runs on the model thread, and
    TensorFlow lets go of the GIL while it computes, so the event loop meanwhile reads and
    parses the requests that make the next batch.

    Batches grow only with load: while recent batches held one request each, the next starts
    at once; once a recent batch held N requests, the next waits (at most `fill_timeout_s`)
    until N are queued, since the clients just answered are likely to come back within a
    moment, and one model call for all of them costs far less than one each.
    """

    def __init__(self, run_batch: Callable[[dict], dict], max_batch: int, fill_timeout_s: float = 0.002):
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._fill_timeout_s = fill_timeout_s
        self._recent_batches: deque[int] = deque([1], maxlen=RECENT_BATCHES)  # requests per batch
        self._arrived: asyncio.Event | None = None
        self._queue: deque[_Pending] = deque()
        self._drainer: asyncio.Task | None = None
        self._closed = False
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        self.batches = 0  # batches run, instances in them, and seconds in the model
        self.instances = 0
        self.model_seconds = 0.0

    async def predict(self, inputs: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
        """This request's rows of the model's outputs, for its `size` instances in `inputs`."""
        if self._closed:
            raise Unavailable("model server is shutting down")
        loop = asyncio.get_running_loop()
        pending = _Pending(inputs, size, tuple(a.shape[1:] for a in inputs.values()), loop.create_future())
        self._queue.append(pending)
        if self._arrived is not None:
            self._arrived.set()
        if self._drainer is None:
            # Starts on the next turn of the loop: requests parsed in this one join the batch.
            self._drainer = loop.create_task(self._drain())
        return await pending.future

    def close(self) -> None:
        """Refuse new requests; queued ones still run."""
        self._closed = True
        self._model_thread.shutdown(wait=False)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                await self._fill()
                batch = self._take()
                self._recent_batches.append(len(batch))
                try:
                    if len(batch) == 1 and max(self._recent_batches) == 1 and not self._queue:
                        # no load: a thread hand-off would only add latency
                        outputs = self._run_and_split(batch)
                    else:
                        outputs = await loop.run_in_executor(self._model_thread, self._run_and_split, batch)
                except Exception as exc:
                    total = sum(p.size for p in batch)
                    problem = f"model failed on a batch of {total} instances: {first_line(exc)}"
                    log.warning("%s", problem)
                    outputs = [TwinError(problem)] * len(batch)
                for pending, output in zip(batch, outputs, strict=True):
                    if pending.future.done():  # its client went away
                        continue
                    if isinstance(output, Exception):
                        pending.future.set_exception(output)
                    else:
                        pending.future.set_result(output)
        finally:
            self._drainer = None

    async def _fill(self) -> None:
        """Wait (at most the fill timeout) until as many requests are queued as a recent batch had."""
        expected = max(self._recent_batches)
        if expected <= 1 or self._fill_timeout_s <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._fill_timeout_s
        self._arrived = self._arrived or asyncio.Event()
        while len(self._queue) < expected and (remaining := deadline - loop.time()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Pending]:
        """The next batch: the oldest request, then queued ones of its shapes that fit."""
        first = self._queue.popleft()
        batch, size, kept = [first], first.size, deque()
        for pending in self._queue:
            if pending.shapes == first.shapes and size + pending.size <= self._max_batch:
                batch.append(pending)
                size += pending.size
            else:
                kept.append(pending)
        self._queue = kept
        return batch

    def _run_and_split(self, batch: list[_Pending]) -> list[dict[str, np.ndarray]]:
        """Run the model on the batch (on the model thread); each request's rows of the outputs."""
        import numpy as np

        total = sum(p.size for p in batch)
        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            inputs = {name: np.concatenate([p.inputs[name] for p in batch]) for name in batch[0].inputs}
        started = time.perf_counter()
        outputs = self._run_batch(inputs)
        self.batches += 1
        self.instances += total
        self.model_seconds += time.perf_counter() - started
        for name, arr in outputs.items():
            if arr.ndim == 0 or arr.shape[0] != total:
                raise RuntimeError(
                    f"output '{name}' has shape {list(arr.shape)}; expected a leading batch dimension of {total}"
                )
        rows, offset = [], 0
        for pending in batch:
            rows.append({name: arr[offset : offset + pending.size] for name, arr in outputs.items()})
            offset += pending.size
        return rows
