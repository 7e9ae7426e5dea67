"""The model server process: its routes on the twin's HTTP layer, and its CLI.

    python -m edge.twin.vertex.serving --model-dir DIR --port PORT [--framework tensorflow|sklearn|xgboost]
        [--max-instances 1000] [--max-batch 64] [--batch-timeout-ms 2] [--port-file FILE] [--lifeline FD]

prints `LISTENING <port>` once the model is loaded and the socket listens, and serves on
127.0.0.1 until SIGTERM or SIGINT, or until the lifeline FD (the twin's, see
edge/twin/lifeline.py) reads EOF. Errors are answered as TF Serving's REST API does,
`{"error": message}`: 4xx for bad requests (413 over Vertex's 1.5 MB online limit, 400 for
malformed JSON or instances), 500 when the model fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edge.twin import lifeline
from edge.twin.errors import TwinError
from edge.twin.server import MAX_PREDICT_BYTES, Request, Response, Routes, Server, predict_limited
from edge.twin.vertex.serving.batching import DynamicBatcher
from edge.twin.vertex.serving.errors import first_line
from edge.twin.vertex.serving.payload import format_predictions, parse_instances
from edge.twin.vertex.serving.predictor import SavedModelPredictor, load_predictor

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_PREDICT_BYTES
DEFAULT_MAX_INSTANCES = 1000
DEFAULT_MAX_BATCH = 64
DEFAULT_BATCH_TIMEOUT_MS = 2.0
SERVER_OPTIONS = ("max_instances", "max_batch", "batch_timeout_ms")  # CLI options start_model_server passes on
EXIT_AFTER_LIFELINE_SECONDS = 10  # a graceful stop that takes longer ends the process anyway


def serving_error_body(error: TwinError) -> dict:
    """TF Serving's error body."""
    return {"error": error.message}


def model_routes(predictor: SavedModelPredictor, batcher: DynamicBatcher, max_instances: int) -> Routes:
    """`GET /health` and `POST /predict`, as Vertex's prebuilt TensorFlow container answers them."""

    async def health(_request: Request) -> Response:
        return Response.json({"status": "ok"})

    @predict_limited
    async def predict(request: Request) -> Response:
        inputs, size = parse_instances(request.json_value(), predictor.inputs, max_instances)
        outputs = await batcher.predict(inputs, size)
        return Response.json({"predictions": format_predictions(outputs)})

    return [(r"/health", {"GET": health}), (r"/predict", {"POST": predict})]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m edge.twin.vertex.serving", description="Serve a model like Vertex AI's prebuilt containers."
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="the model's artifact directory")
    parser.add_argument(
        "--framework",
        choices=("tensorflow", "sklearn", "xgboost"),
        help="how to load it (default: what its files suggest); the twin reads it from the serving image",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on; 0 = any free")
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
        help="longest wait for a batch to fill, under load (see batching.py)",
    )
    parser.add_argument("--port-file", type=Path, help="file to write the port to once ready (written atomically)")
    parser.add_argument("--lifeline", type=int, help="read end of the twin's lifeline: EOF stops the server")
    args = parser.parse_args(argv)
    if args.max_instances < 1 or args.max_batch < 1 or args.batch_timeout_ms < 0:
        parser.error("--max-instances and --max-batch must be >= 1, --batch-timeout-ms >= 0")
    return args


def _announce(port: int, port_file: Path | None) -> None:
    if port_file:
        partial = port_file.with_name(port_file.name + ".partial")
        partial.write_text(f"{port}\n")
        os.replace(partial, port_file)
    print(f"LISTENING {port}", flush=True)


def _on_lifeline_eof(stop: threading.Event) -> None:
    log.info("the twin that started this server is gone; stopping")
    stop.set()
    threading.Timer(EXIT_AFTER_LIFELINE_SECONDS, os._exit, args=(1,)).start()


def main(argv: list[str] | None = None) -> int:
    """Run the model server until SIGTERM, SIGINT or the lifeline's EOF; the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s model-server: %(message)s"
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if args.lifeline is not None:
        lifeline.watch(args.lifeline, lambda: _on_lifeline_eof(stop))
    try:
        predictor = load_predictor(args.model_dir, args.framework)
    except Exception as exc:
        log.error("cannot load the model from %s: %s", args.model_dir, first_line(exc))
        return 1
    log.info("loaded %s: %s", args.model_dir, predictor.describe())
    if stop.is_set():
        return 0
    predictor.warm_up()
    max_batch = min(args.max_batch, predictor.batch_limit or args.max_batch)
    batcher = DynamicBatcher(predictor.run, max_batch, args.batch_timeout_ms / 1000)
    routes = model_routes(predictor, batcher, args.max_instances)
    with Server(routes, name="model", port=args.port, max_body=MAX_BODY_BYTES, error_body=serving_error_body) as server:
        _announce(server.port, args.port_file)
        log.info("listening on %s (max batch %d, batch timeout %g ms)", server.url, max_batch, args.batch_timeout_ms)
        while not stop.wait(1):
            pass
    batcher.close()
    log.info(
        "stopped after %d instances in %d batches (%.1f s in the model)",
        batcher.instances,
        batcher.batches,
        batcher.model_seconds,
    )
    return 0
