"""Model server of the Vertex twin: one process per deployed model.

The process loads a TensorFlow SavedModel and answers like Vertex AI's prebuilt
TensorFlow serving container:

    GET  /health   -> 200 {"status": "ok"}
    POST /predict  {"instances": [...]} -> 200 {"predictions": [...]}

Instances use TF-serving's row format: the bare value when the `serving_default`
signature has one input, otherwise an object keyed by input name. Predictions mirror
it: the bare value for one output, otherwise an object keyed by output name. Bad
requests get 400 (413 over Vertex's 1.5 MB online limit) with `{"error": message}`.

Concurrent requests are batched dynamically: the model runs one batch at a time, on
whatever is queued (up to --max-batch instances, waiting at most --batch-timeout-ms),
and the outputs are split back to each request (see DynamicBatcher).

Run it as

    python -m edge.twin.vertex.serving --model-dir DIR --port PORT [--host 127.0.0.1]
        [--max-instances 1000] [--max-batch 64] [--batch-timeout-ms 2] [--port-file FILE]

It prints `LISTENING <port>` once the model is loaded and the socket listens. The parent
twin uses `start_model_server` / `stop_model_server`. Importing this module is cheap:
numpy and TensorFlow are imported only inside the functions that need them.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("edge.twin.vertex.serving")

MAX_BODY_BYTES = 1_572_864  # Vertex AI's online prediction request limit (1.5 MB)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_INSTANCES = 1000
DEFAULT_MAX_BATCH = 64
DEFAULT_BATCH_TIMEOUT_MS = 2.0
SERVER_OPTIONS = ("host", "max_instances", "max_batch", "batch_timeout_ms")
PROJECT_ROOT = Path(__file__).resolve().parents[3]


class ServingError(Exception):
    """A request that fails with an HTTP status and a message for the client."""

    def __init__(self, status: int, message: str, *, allow: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow


# ---------------------------------------------------------------- request parsing


class _NonFiniteLiteral(ValueError):
    pass


def _reject_constant(literal: str) -> None:
    raise _NonFiniteLiteral(literal)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _fast_json() -> Any:
    try:
        import orjson  # a dependency of dvc-data; about 6x faster on lists of numbers
    except ImportError:
        return None
    return orjson


def decode_body(body: bytes) -> Any:
    """The JSON value of a request body; NaN and Infinity literals are rejected."""
    orjson = _fast_json()
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the standard decoder below explains the problem better
    try:
        return _DECODER.decode(body.decode("utf-8"))
    except _NonFiniteLiteral as exc:
        raise ServingError(400, f"request body contains {exc}; JSON numbers must be "
                                "finite") from None
    except UnicodeDecodeError:
        raise ServingError(400, "request body is not valid UTF-8 JSON") from None
    except ValueError as exc:
        raise ServingError(400, f"request body is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class InputSpec:
    """One input of the serving signature, as seen by a single instance."""

    name: str
    dtype: Any  # numpy dtype the model takes
    dtype_name: str  # TensorFlow's name for it: float32, int64, string...
    kind: str  # "float", "int", "bool" or "string"
    shape: tuple[int | None, ...]  # per instance, without the batch dimension


_ACCEPTED_KINDS = {"float": "fiu", "int": "iu", "bool": "b"}  # numpy kinds JSON may give
_KIND_NAMES = {"f": "floats", "i": "integers", "u": "integers", "b": "booleans",
               "U": "strings", "S": "strings", "O": "nulls, objects or mixed values"}


def _format_shape(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


def _shape_matches(got: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(got) == len(expected) and all(e is None or e == g for g, e in zip(got, expected))


def _decode_strings(value: Any, where: str, spec: InputSpec) -> Any:
    """Nested JSON strings (or {"b64": ...} objects) turned into bytes."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list):
        return [_decode_strings(v, where, spec) for v in value]
    if isinstance(value, dict) and value.keys() == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise ServingError(400, f"{where}: 'b64' value is not valid base64") from None
    raise ServingError(400, f"{where}: expected strings for {spec.dtype_name} input, "
                            f"got {type(value).__name__}")


def _cast(arr: np.ndarray, spec: InputSpec, where: str) -> np.ndarray:
    """Numeric `arr` in the model's dtype, or ServingError naming the problem at `where`."""
    import numpy as np

    if arr.dtype.kind not in _ACCEPTED_KINDS[spec.kind]:
        got = _KIND_NAMES.get(arr.dtype.kind, str(arr.dtype))
        raise ServingError(400, f"{where}: expected {spec.dtype_name} values, got {got}")
    if spec.kind == "int" and arr.size:
        info = np.iinfo(spec.dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise ServingError(400, f"{where}: value out of range for {spec.dtype_name}")
    with np.errstate(over="ignore"):  # overflow shows up as Infinity, refused below
        cast = arr.astype(spec.dtype, copy=False)
    if spec.kind == "float" and not np.isfinite(cast).all():
        raise ServingError(400, f"{where}: value is NaN, Infinity or out of range "
                                f"for {spec.dtype_name}")
    return cast


def _instance_array(spec: InputSpec, index: int, value: Any) -> np.ndarray:
    import numpy as np

    where = f"instance {index}, input '{spec.name}'"
    if spec.kind == "string":
        value = _decode_strings(value, where, spec)
    try:
        arr = np.asarray(value, dtype=object if spec.kind == "string" else None)
    except ValueError:
        raise ServingError(400, f"{where}: nested lists have uneven lengths; expected shape "
                                f"{_format_shape(spec.shape)}") from None
    if spec.kind == "string" and not all(isinstance(v, bytes) for v in arr.flat):
        raise ServingError(400, f"{where}: nested lists have uneven lengths; expected shape "
                                f"{_format_shape(spec.shape)}")
    if not _shape_matches(arr.shape, spec.shape):
        raise ServingError(400, f"{where}: expected shape {_format_shape(spec.shape)}, "
                                f"got {_format_shape(arr.shape)}")
    return arr if spec.kind == "string" else _cast(arr, spec, where)


def stack_input(spec: InputSpec, values: list) -> np.ndarray:
    """One input's values of all instances as a batch array in the model's dtype.

    Tries one numpy conversion of the whole list; when that fails, converts instance by
    instance so that the error names the offending instance.
    """
    import numpy as np

    if spec.kind != "string":
        try:
            arr = np.asarray(values)
        except ValueError:
            arr = None
        if (arr is not None and arr.dtype.kind in _ACCEPTED_KINDS[spec.kind]
                and _shape_matches(arr.shape[1:], spec.shape)):
            try:
                return _cast(arr, spec, "")
            except ServingError:
                pass  # find the instance to blame below
    arrays = [_instance_array(spec, i, v) for i, v in enumerate(values)]
    for i, arr in enumerate(arrays[1:], start=1):
        if arr.shape != arrays[0].shape:
            raise ServingError(400, f"instance {i}, input '{spec.name}': shape "
                                    f"{_format_shape(arr.shape)} differs from instance 0's "
                                    f"{_format_shape(arrays[0].shape)}")
    return np.stack(arrays)


def parse_instances(payload: Any, inputs: list[InputSpec], max_instances: int
                    ) -> tuple[dict[str, np.ndarray], int]:
    """The batch arrays of a decoded predict request, and its number of instances."""
    if not isinstance(payload, dict):
        raise ServingError(400, "request body must be a JSON object with an 'instances' list, "
                                f"got {type(payload).__name__}")
    if "instances" not in payload:
        raise ServingError(400, "request body has no 'instances' key")
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise ServingError(400, f"'instances' must be a list, got {type(instances).__name__}")
    if not instances:
        raise ServingError(400, "'instances' is empty; send at least one instance")
    if len(instances) > max_instances:
        raise ServingError(400, f"request has {len(instances)} instances; at most "
                                f"{max_instances} instances are allowed per request")
    if len(inputs) == 1:
        return {inputs[0].name: stack_input(inputs[0], _bare_values(instances, inputs[0]))
                }, len(instances)
    names = {spec.name for spec in inputs}
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise ServingError(400, f"instance {i} must be an object keyed by input name "
                                    f"({', '.join(sorted(names))}): the model has several inputs")
        if inst.keys() != names:
            missing, unknown = names - inst.keys(), inst.keys() - names
            problem = (f"is missing input(s) {', '.join(sorted(missing))}" if missing
                       else f"has unknown input(s) {', '.join(sorted(unknown))}")
            raise ServingError(400, f"instance {i} {problem}; the model's inputs are "
                                    f"{', '.join(sorted(names))}")
    return ({spec.name: stack_input(spec, [inst[spec.name] for inst in instances])
             for spec in inputs}, len(instances))


def _bare_values(instances: list, spec: InputSpec) -> list:
    """The instances of a one-input model, each unwrapped from {name: value} if so sent."""
    values = instances
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            continue
        if inst.keys() == {spec.name}:
            values = values if values is not instances else list(instances)
            values[i] = inst[spec.name]
        elif not (spec.kind == "string" and inst.keys() == {"b64"}):
            raise ServingError(400, f"instance {i} is an object with keys "
                                    f"{', '.join(sorted(map(str, inst)))}; the model has one "
                                    f"input, '{spec.name}': send its value, or an object with "
                                    "that key")
    return values


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _json_rows(arr: np.ndarray) -> list:
    if arr.dtype.kind == "O":
        return _json_value(arr.tolist())
    if arr.dtype.kind not in "fiub":  # bfloat16 and other extension dtypes
        arr = arr.astype("float32")
    return arr.tolist()


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if value - value == 0 else None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


def _dumps_finite(payload: Any) -> bytes:
    """JSON without the NaN/Infinity extension: non-finite floats become null."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return _dumps_finite(_finite_or_none(payload))


def format_predictions(outputs: dict[str, np.ndarray]) -> list:
    """Per-row JSON predictions: bare values for one output, else objects by name."""
    rows = {name: _json_rows(arr) for name, arr in outputs.items()}
    if len(rows) == 1:
        return next(iter(rows.values()))
    n = len(next(iter(rows.values())))
    return [{name: values[i] for name, values in rows.items()} for i in range(n)]


# ---------------------------------------------------------------- the model


class SavedModelPredictor:
    """The `serving_default` signature of a SavedModel, called on numpy batches."""

    def __init__(self, model_dir: Path):
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(str(model_dir))  # keeps the variables alive
        signatures = self._loaded.signatures
        if "serving_default" not in signatures:
            raise RuntimeError(f"SavedModel at {model_dir} has no 'serving_default' signature "
                               f"(it has: {', '.join(signatures) or 'none'})")
        self._function = signatures["serving_default"]
        _, specs = self._function.structured_input_signature
        self.inputs = [self._input_spec(name, spec) for name, spec in specs.items()]
        self.output_names = list(self._function.structured_outputs)
        if not self.inputs:
            raise RuntimeError(f"SavedModel at {model_dir}: serving_default takes no inputs")
        fixed = [spec.shape[0] for spec in specs.values() if spec.shape[0] is not None]
        self.batch_limit: int | None = min(fixed) if fixed else None  # None: any batch size

    def _input_spec(self, name: str, spec: Any) -> InputSpec:
        import numpy as np

        dtype = spec.dtype
        if dtype.is_bool:
            kind = "bool"
        elif dtype == self._tf.string:
            kind = "string"
        elif dtype.is_floating:
            kind = "float"
        elif dtype.is_integer:
            kind = "int"
        else:
            raise RuntimeError(f"input '{name}' has dtype {dtype.name}, which the twin "
                               "cannot take from JSON")
        if not spec.shape.rank:
            raise RuntimeError(f"input '{name}' has shape {spec.shape}; the twin needs a known "
                               "rank with a leading batch dimension")
        shape = tuple(spec.shape.as_list()[1:])
        return InputSpec(name, np.dtype(dtype.as_numpy_dtype), dtype.name, kind, shape)

    def describe(self) -> str:
        inputs = ", ".join(f"{s.name}: {s.dtype_name}{_format_shape((None, *s.shape))}"
                           for s in self.inputs)
        return f"inputs ({inputs}); outputs ({', '.join(self.output_names)})"

    def run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        outputs = self._function(**{name: tf.constant(arr) for name, arr in batch.items()})
        return {name: outputs[name].numpy() for name in self.output_names}

    def warm_up(self) -> None:
        """Run one zero instance so that the first request pays no first-call cost."""
        import numpy as np

        batch = {s.name: np.zeros((1, *(d or 1 for d in s.shape)),
                                  dtype=object if s.kind == "string" else s.dtype)
                 for s in self.inputs}
        for s in self.inputs:
            if s.kind == "string":
                batch[s.name].fill(b"")
        try:
            self.run(batch)
        except Exception as exc:  # a model may reject zeros; real requests will tell
            log.warning("warm-up call failed (serving anyway): %s", _first_line(exc))


_TF_BOILERPLATE = ("Graph execution error", "Detected at node", "<stack traces", "File ")


def _first_line(exc: BaseException) -> str:
    """The informative line of an error; TensorFlow's start with boilerplate."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    lines = [line.strip() for line in message.splitlines()]
    useful = [line for line in lines if line and not line.startswith(_TF_BOILERPLATE)]
    return (useful or lines or [type(exc).__name__])[0][:1000]


# ---------------------------------------------------------------- dynamic batching


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

    def predict(self, read: Callable[[], bytes],
                parse: Callable[[bytes], tuple[dict[str, np.ndarray], int]]
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
        if self._filling is not None and (
                self._arriving == 0 or self._filling + self._queued >= self._max_batch):
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
            log.warning("model failed on a batch of %d instances: %s", total, _first_line(exc))
            error = ServingError(500, f"model failed on a batch of {total} instances: "
                                      f"{_first_line(exc)}")
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
            inputs = {name: np.concatenate([p.inputs[name] for p in batch])
                      for name in batch[0].inputs}
        started = time.perf_counter()
        outputs = self._run_batch(inputs)
        self.model_seconds += time.perf_counter() - started
        for name, arr in outputs.items():
            if arr.ndim == 0 or arr.shape[0] != total:
                raise RuntimeError(f"output '{name}' has shape {list(arr.shape)}; expected "
                                   f"a leading batch dimension of {total}")
        offset = 0
        for pending in batch:
            pending.outputs = {name: arr[offset:offset + pending.size]
                               for name, arr in outputs.items()}
            offset += pending.size


# ---------------------------------------------------------------- HTTP


class ModelService:
    """What the HTTP handlers call: request parsing, the batcher, and the model."""

    def __init__(self, predictor: SavedModelPredictor, *, max_instances: int, max_batch: int,
                 batch_timeout_ms: float):
        self.predictor = predictor
        self.max_instances = max_instances
        self.batcher = DynamicBatcher(predictor.run, max_batch, batch_timeout_ms / 1000)

    def predict(self, read_body: Callable[[], bytes]) -> dict:
        def parse(body: bytes) -> tuple[dict[str, np.ndarray], int]:
            return parse_instances(decode_body(body), self.predictor.inputs, self.max_instances)

        outputs = self.batcher.predict(read_body, parse)
        with self.batcher.python_lock:
            return {"predictions": format_predictions(outputs)}


class _Headers(dict):
    """Request headers by lower-case name; get() ignores case, as email's Message does."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a proxy can reuse connections
    server_version = "edge-twin-model-server"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one send, flushed after each request
    server: ModelHTTPServer

    _date = (0, "")  # the Date header of the current second

    def parse_request(self) -> bool:
        """BaseHTTPRequestHandler.parse_request for HTTP/1.0 and 1.1, without the email
        package's MIME parser, which takes about a third of a small request's CPU time."""
        self.command = None
        self.request_version = "HTTP/1.0"  # errors below get a status line
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            self.send_error(400, f"Bad request line {self.requestline[:200]!r}")
            return False
        if words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(505, f"HTTP version {words[2][:20]!r} is not supported")
            return False
        self.command, self.path, self.request_version = words
        self.close_connection = self.request_version != "HTTP/1.1"
        headers = _Headers()
        while True:
            line = self.rfile.readline(65537)
            if len(line) > 65536 or len(headers) > 100:
                self.send_error(431, "Request header fields too large")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(line, "iso-8859-1").partition(":")
            name = name.strip().lower()
            if not colon or not name or line[:1] in (b" ", b"\t"):
                self.send_error(400, f"Bad header line {line[:200]!r}")
                return False
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if headers.get("expect", "").lower() == "100-continue" and not self.close_connection:
            return self.handle_expect_100()
        return True

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        if _Handler._date[0] != second:
            _Handler._date = (second, super().date_time_string(second))
        return _Handler._date[1]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def handle_expect_100(self) -> bool:
        """Invite the body now (responses are buffered), unless it will be refused."""
        length = self.headers.get("Content-Length", "")
        if not (length.isdigit() and int(length) > MAX_BODY_BYTES):
            self.send_response_only(100)
            self.end_headers()
            self.wfile.flush()
        return True

    def _health(self) -> dict:
        return {"status": "ok"}

    def _predict(self) -> dict:
        length = self._content_length()
        return self.server.service.predict(lambda: self._read_body(length))

    ROUTES = {"/health": {"GET": _health}, "/predict": {"POST": _predict}}

    def _dispatch(self, method: str) -> None:
        self._body_read = False
        path = self.path.split("?", 1)[0]
        allow = None
        try:
            methods = self.ROUTES.get(path)
            if methods is None:
                raise ServingError(404, f"no route for {path}; this server answers "
                                        "GET /health and POST /predict")
            handler = methods.get(method)
            if handler is None:
                raise ServingError(405, f"{method} is not allowed on {path}; use "
                                        f"{', '.join(methods)}", allow=", ".join(methods))
            status, payload = 200, handler(self)
        except ServingError as exc:
            status, payload, allow = exc.status, {"error": exc.message}, exc.allow
        except Exception as exc:
            log.exception("internal error on %s %s", method, path)
            status, payload = 500, {"error": f"internal error: {_first_line(exc)}"}
        if status >= 400:
            log.info("%s %s -> %d: %s", method, path, status, payload["error"])
        if not self._body_read:
            self._discard_body()
        self._send_json(status, payload, allow)

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ServingError(411, "chunked request bodies are not supported; "
                                    "send a Content-Length")
        header = self.headers.get("Content-Length")
        if header is None:
            raise ServingError(411, "request has no Content-Length")
        try:
            length = int(header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise ServingError(400, f"Content-Length {header!r} is not a valid length") from None
        if length > MAX_BODY_BYTES:
            raise ServingError(413, f"request body is {length} bytes; online prediction "
                                    f"accepts at most {MAX_BODY_BYTES} bytes (1.5 MB)")
        return length

    def _read_body(self, length: int) -> bytes:
        body = self.rfile.read(length)
        self._body_read = True
        if len(body) < length:
            self.close_connection = True
            raise ServingError(400, f"request body ended after {len(body)} of {length} bytes")
        return body

    def _discard_body(self) -> None:
        """Skip an unread body so the connection can serve the next request, or close it."""
        header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or (header and not header.isdigit()):
            self.close_connection = True
        elif header and int(header) > 0:
            if int(header) > MAX_BODY_BYTES:
                self.close_connection = True
            else:
                self.rfile.read(int(header))

    def _send_json(self, status: int, payload: dict, allow: str | None = None) -> None:
        orjson = _fast_json()  # writes NaN and Infinity as null, like JSON must
        body = orjson.dumps(payload) if orjson is not None else _dumps_finite(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # errors are logged by _dispatch; a line per request would cost throughput

    def log_message(self, format: str, *args: Any) -> None:
        log.info(format, *args)  # malformed requests the stdlib answers itself


class ModelHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one ModelService."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: ModelService):
        self.service = service
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # HTTPServer's getfqdn() can stall on offline DNS
        self.server_name, self.server_port = self.server_address[:2]


# ---------------------------------------------------------------- the process


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m edge.twin.vertex.serving",
                                     description="Serve a TensorFlow SavedModel like Vertex AI.")
    parser.add_argument("--model-dir", type=Path, required=True, help="SavedModel directory")
    parser.add_argument("--port", type=int, required=True, help="port to listen on; 0 = any free")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default loopback)")
    parser.add_argument("--max-instances", type=int, default=DEFAULT_MAX_INSTANCES,
                        help="most instances accepted in one request")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help="most instances run through the model at once")
    parser.add_argument("--batch-timeout-ms", type=float, default=DEFAULT_BATCH_TIMEOUT_MS,
                        help="longest wait for a batch to fill after its first request")
    parser.add_argument("--port-file", type=Path,
                        help="file to write the port to once ready (written atomically)")
    args = parser.parse_args(argv)
    if args.max_instances < 1 or args.max_batch < 1 or args.batch_timeout_ms < 0:
        parser.error("--max-instances and --max-batch must be >= 1, --batch-timeout-ms >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the model server until SIGTERM or SIGINT; the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s model-server: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stop = threading.Event()
    server: ModelHTTPServer | None = None

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()
        if server is not None:
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    if not any((args.model_dir / name).is_file()
               for name in ("saved_model.pb", "saved_model.pbtxt")):
        log.error("cannot load SavedModel from %s: no saved_model.pb in it", args.model_dir)
        return 1
    try:
        predictor = SavedModelPredictor(args.model_dir)
    except Exception as exc:
        log.error("cannot load SavedModel from %s: %s", args.model_dir, _first_line(exc))
        return 1
    log.info("loaded %s: %s", args.model_dir, predictor.describe())
    if stop.is_set():
        return 0
    predictor.warm_up()
    max_batch = min(args.max_batch, predictor.batch_limit or args.max_batch)
    service = ModelService(predictor, max_instances=args.max_instances,
                           max_batch=max_batch, batch_timeout_ms=args.batch_timeout_ms)
    server = ModelHTTPServer((args.host, args.port), service)
    port = server.server_address[1]
    if args.port_file:
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(f"{port}\n")
        os.replace(partial, args.port_file)
    print(f"LISTENING {port}", flush=True)
    log.info("listening on http://%s:%d (max batch %d, batch timeout %g ms)",
             args.host, port, max_batch, args.batch_timeout_ms)
    try:
        if not stop.is_set():
            server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        service.batcher.close()
    batcher = service.batcher
    log.info("stopped after %d instances in %d batches (%.1f s in the model)",
             batcher.instances, batcher.batches, batcher.model_seconds)
    return 0


# ---------------------------------------------------------------- parent-side helpers


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _health_ok(host: str, port: int) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_model_server(model_dir: Path, log_path: Path, port: int = 0, *,
                       ready_timeout: float = 120.0, **opts: Any
                       ) -> tuple[subprocess.Popen, int]:
    """Start a model server process for `model_dir`; return it and its port once ready.

    `opts` are the CLI options by Python name: host, max_instances, max_batch,
    batch_timeout_ms. The process gets its own session (so stop_model_server can signal
    its group) and writes stdout and stderr to `log_path`. Raises RuntimeError with the
    log's tail if it exits or is not ready within `ready_timeout` seconds.
    """
    unknown = set(opts) - set(SERVER_OPTIONS)
    if unknown:
        raise TypeError(f"unknown model server option(s): {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(SERVER_OPTIONS)}")
    host = opts.get("host", DEFAULT_HOST)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH"))
                                        if p)
    with tempfile.TemporaryDirectory(prefix="edge-model-server-") as scratch:
        port_file = Path(scratch) / "port"
        command = [sys.executable, "-m", "edge.twin.vertex.serving",
                   "--model-dir", str(model_dir), "--port", str(port),
                   "--port-file", str(port_file)]
        for name, value in opts.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while not port_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"model server for {model_dir} exited with status "
                                   f"{proc.returncode} before it was ready; log "
                                   f"{log_path}:\n{_log_tail(log_path)}")
            if time.monotonic() > deadline:
                stop_model_server(proc)
                raise RuntimeError(f"model server for {model_dir} was not ready after "
                                   f"{ready_timeout:g} s; log {log_path}:\n{_log_tail(log_path)}")
            time.sleep(0.05)
        bound_port = int(port_file.read_text())
    if not _health_ok({"": DEFAULT_HOST, "0.0.0.0": DEFAULT_HOST, "::": "::1"}.get(host, host),
                      bound_port):
        stop_model_server(proc)
        raise RuntimeError(f"model server for {model_dir} announced port {bound_port} but "
                           f"GET /health failed; log {log_path}:\n{_log_tail(log_path)}")
    return proc, bound_port


def stop_model_server(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """Stop a server from start_model_server: SIGTERM its group, then SIGKILL; its status."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
