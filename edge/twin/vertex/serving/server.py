"""The model server process: HTTP routes for /health and /predict, and its CLI.

    python -m edge.twin.vertex.serving --model-dir DIR --port PORT [--host 127.0.0.1]
        [--max-instances 1000] [--max-batch 64] [--batch-timeout-ms 2] [--port-file FILE]

prints `LISTENING <port>` once the model is loaded and the socket listens, and serves
until SIGTERM or SIGINT. Bad requests get 4xx (413 over Vertex's 1.5 MB online limit)
with `{"error": message}`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any

from edge.twin.http import FastRequestHandler
from edge.twin.vertex.serving.batching import DynamicBatcher
from edge.twin.vertex.serving.errors import ServingError, first_line
from edge.twin.vertex.serving.payload import decode_body, encode_body, format_predictions, parse_instances
from edge.twin.vertex.serving.predictor import SavedModelPredictor

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_572_864  # Vertex AI's online prediction request limit (1.5 MB)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_INSTANCES = 1000
DEFAULT_MAX_BATCH = 64
DEFAULT_BATCH_TIMEOUT_MS = 2.0
SERVER_OPTIONS = ("host", "max_instances", "max_batch", "batch_timeout_ms")  # CLI options


class ModelService:
    """What the HTTP handlers call: request parsing, the batcher, and the model."""

    def __init__(self, predictor: SavedModelPredictor, *, max_instances: int, max_batch: int, batch_timeout_ms: float):
        self.predictor = predictor
        self.max_instances = max_instances
        self.batcher = DynamicBatcher(predictor.run, max_batch, batch_timeout_ms / 1000)

    def predict(self, read_body: Callable[[], bytes]) -> dict:
        def parse(body: bytes) -> tuple[dict[str, np.ndarray], int]:
            return parse_instances(decode_body(body), self.predictor.inputs, self.max_instances)

        outputs = self.batcher.predict(read_body, parse)
        with self.batcher.python_lock:
            return {"predictions": format_predictions(outputs)}


class _Handler(FastRequestHandler):
    server_version = "edge-twin-model-server"
    server: ModelHTTPServer

    def handle_expect_100(self) -> bool:
        """Invite the body now (responses are buffered), unless it will be refused."""
        length = self.headers.get("Content-Length", "")
        if not (length.isdecimal() and int(length) > MAX_BODY_BYTES):
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

    def _dispatch(self) -> None:
        """Answer the request with its route's JSON, or a ServingError's status and message."""
        method = self.command
        self._body_read = False
        path = self.path.split("?", 1)[0]
        allow = None
        try:
            methods = self.ROUTES.get(path)
            if methods is None:
                raise ServingError(404, f"no route for {path}; this server answers GET /health and POST /predict")
            handler = methods.get(method)
            if handler is None:
                raise ServingError(
                    405, f"{method} is not allowed on {path}; use {', '.join(methods)}", allow=", ".join(methods)
                )
            status, payload = 200, handler(self)
        except ServingError as exc:
            status, payload, allow = exc.status, {"error": exc.message}, exc.allow
        except Exception as exc:
            log.exception("internal error on %s %s", method, path)
            status, payload = 500, {"error": f"internal error: {first_line(exc)}"}
        if status >= 400:
            log.info("%s %s -> %d: %s", method, path, status, payload["error"])
        if not self._body_read:
            self._discard_body()
        self._send_json(status, payload, allow)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ServingError(411, "chunked request bodies are not supported; send a Content-Length")
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
            raise ServingError(
                413,
                f"request body is {length} bytes; online prediction accepts at most {MAX_BODY_BYTES} bytes (1.5 MB)",
            )
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
        if self.headers.get("Transfer-Encoding") or (header and not header.isdecimal()):
            self.close_connection = True
        elif header and int(header) > 0:
            if int(header) > MAX_BODY_BYTES:
                self.close_connection = True
            else:
                self.rfile.read(int(header))

    def _send_json(self, status: int, payload: dict, allow: str | None = None) -> None:
        body = encode_body(payload)
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


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m edge.twin.vertex.serving", description="Serve a TensorFlow SavedModel like Vertex AI."
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="SavedModel directory")
    parser.add_argument("--port", type=int, required=True, help="port to listen on; 0 = any free")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default loopback)")
    parser.add_argument(
        "--max-instances", type=int, default=DEFAULT_MAX_INSTANCES, help="most instances accepted in one request"
    )
    parser.add_argument(
        "--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="most instances run through the model at once"
    )
    parser.add_argument(
        "--batch-timeout-ms",
        type=float,
        default=DEFAULT_BATCH_TIMEOUT_MS,
        help="longest wait for a batch to fill after its first request",
    )
    parser.add_argument("--port-file", type=Path, help="file to write the port to once ready (written atomically)")
    args = parser.parse_args(argv)
    if args.max_instances < 1 or args.max_batch < 1 or args.batch_timeout_ms < 0:
        parser.error("--max-instances and --max-batch must be >= 1, --batch-timeout-ms >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the model server until SIGTERM or SIGINT; the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s model-server: %(message)s"
    )
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

    try:
        if not any((args.model_dir / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")):
            raise RuntimeError("no saved_model.pb in it")
        predictor = SavedModelPredictor(args.model_dir)
    except Exception as exc:
        log.error("cannot load SavedModel from %s: %s", args.model_dir, first_line(exc))
        return 1
    log.info("loaded %s: %s", args.model_dir, predictor.describe())
    if stop.is_set():
        return 0
    predictor.warm_up()
    max_batch = min(args.max_batch, predictor.batch_limit or args.max_batch)
    service = ModelService(
        predictor, max_instances=args.max_instances, max_batch=max_batch, batch_timeout_ms=args.batch_timeout_ms
    )
    server = ModelHTTPServer((args.host, args.port), service)
    port = server.server_address[1]
    if args.port_file:
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(f"{port}\n")
        os.replace(partial, args.port_file)
    print(f"LISTENING {port}", flush=True)
    log.info(
        "listening on http://%s:%d (max batch %d, batch timeout %g ms)",
        args.host,
        port,
        max_batch,
        args.batch_timeout_ms,
    )
    try:
        if not stop.is_set():
            server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        service.batcher.close()
    batcher = service.batcher
    log.info(
        "stopped after %d instances in %d batches (%.1f s in the model)",
        batcher.instances,
        batcher.batches,
        batcher.model_seconds,
    )
    return 0
