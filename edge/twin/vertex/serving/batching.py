"""Dynamic batching: concurrent requests run through the model together."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.twin.vertex.serving.errors import ServingError, first_line

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pending:
    inputs: dict[str, np.ndarray]
    size: int
    shapes: tuple  # trailing shapes; only requests with equal shapes share a batch
    wake: threading.Event = field(default_factory=threading.Event)  # done, or must lead
    done: bool = False
    outputs: dict[str, np.ndarray] | None = None
    error: ServingError | None = None


class DynamicBatcher:
    """Runs concurrent requests through the model together, one batch at a time.

    Requests queue up, and the thread of the oldest queued request leads: it takes the
    queued requests with the same trailing shapes up to `max_batch` instances, waits for
    more only while other requests are still being parsed (at most `timeout_s`), runs
    the model once, gives each request its slice of the outputs, and passes the lead to
    the next queued request. A lone request runs without any thread switch.
    """

    def __init__(self, run_batch: Callable[[dict], dict], max_batch: int, timeout_s: float):
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._queued = 0  # instances in the queue
        self._arriving = 0  # requests being read and parsed, likely to join a batch
        self._leading = False  # a thread collects or runs a batch
        self._filling: int | None = None  # instances in the batch the leader is filling
        self._closed = False
        # Held for the CPU-heavy work of a request (parse, format) and for a model run.
        # numpy casts and TensorFlow calls let go of the GIL briefly; with a dozen request
        # threads runnable, getting it back can take a whole switch interval (5 ms) each
        # time. Threads queued on this lock sleep instead, so the holder gets it back.
        self.python_lock = threading.Lock()
        self.batches = 0  # batches run, instances in them, and seconds in the model
        self.instances = 0
        self.model_seconds = 0.0

    def close(self) -> None:
        """Refuse new requests; queued ones still run."""
        with self._cond:
            self._closed = True

    def predict(
        self, read: Callable[[], bytes], parse: Callable[[bytes], tuple[dict[str, np.ndarray], int]]
    ) -> dict[str, np.ndarray]:
        """This request's outputs. `read` gets its body and `parse` (under python_lock)
        turns it into batch arrays; meanwhile the request counts as arriving."""
        with self._cond:
            self._arriving += 1
        try:
            body = read()
            with self.python_lock:
                inputs, size = parse(body)
        except BaseException:
            with self._cond:
                self._arriving -= 1
                self._wake_leader_if_useful()
            raise
        me = _Pending(inputs, size, tuple(a.shape[1:] for a in inputs.values()))
        with self._cond:
            self._arriving -= 1
            if self._closed:
                raise ServingError(503, "model server is shutting down")
            self._queue.append(me)
            self._queued += size
            leads = not self._leading
            self._leading = True
            if not leads:
                self._wake_leader_if_useful()
        while not me.done:
            if not leads:
                me.wake.wait()
                if me.done:
                    break
                me.wake.clear()  # the lead was passed to this request
            self._lead()
            leads = False
        if me.error is not None:
            raise me.error
        return me.outputs

    def _wake_leader_if_useful(self) -> None:
        """Notify a leader filling a batch if nothing else is coming, or it is full."""
        if self._filling is not None and (self._arriving == 0 or self._filling + self._queued >= self._max_batch):
            self._cond.notify()

    def _lead(self) -> None:
        """Run one batch from the head of the queue, then pass the lead on."""
        try:
            self._run(self._collect())
        finally:
            with self._cond:
                if self._queue:
                    self._queue[0].wake.set()
                else:
                    self._leading = False

    def _collect(self) -> list[_Pending]:
        with self._cond:
            first = self._queue.popleft()
            self._queued -= first.size
            batch, size = [first], first.size
            deadline = time.monotonic() + self._timeout_s
            while size < self._max_batch:
                size = self._filling = self._take_fitting(batch, size)
                if size >= self._max_batch or self._arriving == 0:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._filling = None
            return batch

    def _take_fitting(self, batch: list[_Pending], size: int) -> int:
        if not self._queue:
            return size
        shapes, kept = batch[0].shapes, deque()
        for pending in self._queue:
            if pending.shapes == shapes and size + pending.size <= self._max_batch:
                batch.append(pending)
                size += pending.size
                self._queued -= pending.size
            else:
                kept.append(pending)
        self._queue = kept
        return size

    def _run(self, batch: list[_Pending]) -> None:
        total = sum(p.size for p in batch)
        self.batches += 1
        self.instances += total
        try:
            with self.python_lock:
                self._run_and_split(batch, total)
        except Exception as exc:
            problem = f"model failed on a batch of {total} instances: {first_line(exc)}"
            log.warning("%s", problem)
            error = ServingError(500, problem)
            for pending in batch:
                pending.error = error
        finally:
            for pending in batch:
                pending.done = True
                pending.wake.set()

    def _run_and_split(self, batch: list[_Pending], total: int) -> None:
        """Run the model on the batch and give each request its rows of the outputs."""
        import numpy as np

        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            inputs = {name: np.concatenate([p.inputs[name] for p in batch]) for name in batch[0].inputs}
        started = time.perf_counter()
        outputs = self._run_batch(inputs)
        self.model_seconds += time.perf_counter() - started
        for name, arr in outputs.items():
            if arr.ndim == 0 or arr.shape[0] != total:
                raise RuntimeError(
                    f"output '{name}' has shape {list(arr.shape)}; expected a leading batch dimension of {total}"
                )
        offset = 0
        for pending in batch:
            pending.outputs = {name: arr[offset : offset + pending.size] for name, arr in outputs.items()}
            offset += pending.size
