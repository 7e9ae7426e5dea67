"""Vertex AI's request-response logging on the twin: each sampled predict call becomes one row of Vertex's
BigQuery table (schema "v1": endpoint, deployed_model_id, logging_time, request_id, request_payload with one
JSON text per instance, response_payload with one JSON text per prediction), written to the twin's BigQuery.

Predict only appends to a queue (no parsing, no lock, no I/O); a writer thread turns what queued up into rows
and streams them to the table a few at a time, handing the GIL back to predict's event loop in between, so
logging costs predict little (benchmarks/monitoring.py measures it). Like Vertex, the
twin creates the destination's dataset and table when they do not exist. Sources of the layout:
https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging (request-response logging) and
`PredictRequestResponseLoggingConfig` in the Vertex AI v1 API reference (edge/twin/bigquery/__init__.py).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

import orjson

from edge.twin.errors import InvalidArgument, TwinError

if TYPE_CHECKING:
    from edge.twin.bigquery import BigQueryBackend

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2  # how often the writer turns the queue into rows (a batch's checks hold the GIL: keep it small)
CHUNK = 4  # rows checked and handed to BigQuery at a time (about 0.2 ms with the GIL; 1 costs more, 8 stalls)
MAX_QUEUED = 200_000  # requests waiting for the writer; beyond that new ones are dropped (and counted)
DEFAULT_TABLE = "request_response_logging"
_URI = re.compile(
    r"bq://(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])(?:\.(?P<dataset>\w{1,1024})(?:\.(?P<table>[\w-]{1,1024}))?)?"
)


def _dataset_name(display_name: str, endpoint_id: str) -> str:
    """Vertex's dataset for a destination that names only a project: logging_<display name>_<endpoint id>,
    the display name made BigQuery-compatible (other characters become underscores)."""
    return f"logging_{re.sub(r'[^A-Za-z0-9_]', '_', display_name)}_{endpoint_id}"


def logging_config(config: object, endpoint_name: str, display_name: str) -> dict:
    """The endpoint's `predictRequestResponseLoggingConfig` as the twin keeps it: checked, with the table it
    writes to spelled out in full (`bq://project.dataset.table`). InvalidArgument names what is wrong."""
    if not isinstance(config, dict):
        raise InvalidArgument("predict_request_response_logging_config must be an object.")
    unknown = sorted(set(config) - {"enabled", "samplingRate", "bigqueryDestination"})
    if unknown:
        raise InvalidArgument(f"predict_request_response_logging_config: unknown field(s) {unknown}.")
    enabled, rate = config.get("enabled", False), config.get("samplingRate", 0)
    if not isinstance(enabled, bool):
        raise InvalidArgument(f"predict_request_response_logging_config.enabled must be a boolean, got {enabled!r}.")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise InvalidArgument(f"predict_request_response_logging_config.sampling_rate must be in [0, 1], got {rate!r}.")
    kept = {"enabled": enabled, "samplingRate": float(rate)}
    destination = config.get("bigqueryDestination") or {}
    uri = destination.get("outputUri", "") if isinstance(destination, dict) else None
    if uri is None or not isinstance(uri, str):
        raise InvalidArgument("predict_request_response_logging_config.bigquery_destination must be {output_uri}.")
    parts = endpoint_name.split("/")
    uri = uri or f"bq://{parts[1]}"
    match = _URI.fullmatch(uri)
    if match is None:
        raise InvalidArgument(f"bigquery_destination.output_uri must be bq://project[.dataset[.table]], got {uri!r}.")
    dataset = match["dataset"] or _dataset_name(display_name, parts[-1])
    kept["bigqueryDestination"] = {"outputUri": f"bq://{match['project']}.{dataset}.{match['table'] or DEFAULT_TABLE}"}
    return kept


def destination(config: dict) -> tuple[str, str, str]:
    """(project, dataset, table) of a config that `logging_config` kept."""
    return _table(config["bigqueryDestination"]["outputUri"])


def _table(uri: str) -> tuple[str, str, str]:
    project, dataset, table = uri.removeprefix("bq://").split(".")
    return project, dataset, table


class RequestLog:
    """`submit()` from predict; `start()` / `stop()` (stop writes what is still queued)."""

    def __init__(self, bigquery: BigQueryBackend, fields):
        self.bigquery = bigquery
        self.fields = fields
        self.dropped = 0  # requests not logged because the queue was full
        self.written = 0
        self._queue: deque = deque()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RequestLog:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._drain()

    def prepare(self, config: dict) -> None:
        """Creates the destination's dataset and table if they do not exist (when logging is enabled)."""
        if config.get("enabled"):
            self.bigquery.ensure_table(*destination(config), self.fields)

    def submit(self, endpoint: str, config: dict, deployed_model_id: str, body: bytes, predictions: list) -> None:
        """Queues one answered predict call; the row is made and written by the writer thread."""
        if len(self._queue) >= MAX_QUEUED:
            self.dropped += 1
            return
        uri = config["bigqueryDestination"]["outputUri"]
        self._queue.append((uri, endpoint, deployed_model_id, time.time(), body, predictions))

    def _run(self) -> None:
        while not self._stopping.wait(FLUSH_SECONDS):
            try:
                self._drain()
            except Exception:  # the writer must outlive any one bad batch
                log.exception("request log: a batch could not be written")

    def _drain(self) -> None:
        """Writes what is queued, a few rows at a time, handing the GIL back in between: a thread that keeps it
        for milliseconds makes the event loop wait for it after every socket read (the "convoy" that costs an
        I/O-bound thread much more than the CPU the other one uses)."""
        ensured: set[str] = set()  # tables made sure of in this pass (a dropped one is made again on the next)
        while self._queue:
            batches: dict[str, list[dict]] = {}
            for _ in range(min(CHUNK, len(self._queue))):
                uri, endpoint, deployed_model_id, when, body, predictions = self._queue.popleft()
                row = _row(endpoint, deployed_model_id, when, body, predictions)
                if row is not None:
                    batches.setdefault(uri, []).append(row)
            for uri, rows in batches.items():
                self._write(uri, rows, ensured)
            time.sleep(0)  # lets a thread waiting for the GIL (predict's event loop) have it now

    def _write(self, uri: str, rows: list[dict], ensured: set[str]) -> None:
        project, dataset, table = _table(uri)
        try:
            if uri not in ensured:
                self.bigquery.ensure_table(project, dataset, table, self.fields)
                ensured.add(uri)
            errors = self.bigquery.insert_rows(project, dataset, table, rows)
        except TwinError as exc:
            log.warning("request log: %d rows not written to %s: %s", len(rows), uri, exc.message)
            return
        if errors:
            log.warning("request log: %d of %d rows refused by %s: %s", len(errors), len(rows), uri, errors[0])
        self.written += len(rows) - len(errors)


def _instance_texts(body: bytes, count: int) -> list[str] | None:
    """The JSON text of each instance of an answered predict body (`count` of them), or None if it has none.
    A body of one flat list, `{"instances": [[...]]}`, is cut rather than parsed: the list as sent (the model
    server accepted it as JSON), which spares the twin's busiest moments a parse of every value."""
    flat = _one_flat_list(body) if count == 1 else None
    if flat is not None:
        return [flat]
    try:
        instances = orjson.loads(body).get("instances")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return [orjson.dumps(i).decode() for i in instances] if isinstance(instances, list) else None


def _one_flat_list(body: bytes) -> str | None:
    """X of a body `{"instances": [X]}` where X is a list without nested lists, found with bytes methods (a
    regular expression takes ten times as long over a body of ~800 numbers), or None."""
    outer = body.find(b"[")
    inner = body.find(b"[", outer + 1)
    end = body.find(b"]", inner + 1)
    if min(outer, inner, end) < 0 or b"".join(body[: outer + 1].split()) != b'{"instances":[':
        return None
    if (
        body[outer + 1 : inner].strip()
        or body.count(b"[", inner + 1, end)
        or b"".join(body[end + 1 :].split()) != b"]}"
    ):
        return None
    return body[inner : end + 1].decode()


def _row(endpoint: str, deployed_model_id: str, when: float, body: bytes, predictions: list) -> dict | None:
    """One row in Vertex's layout, or None for a body that is not `{"instances": [...]}` (never answered)."""
    instances = _instance_texts(body, len(predictions))
    if instances is None:
        return None
    return {
        "endpoint": endpoint,
        "deployed_model_id": deployed_model_id,
        "logging_time": when,
        "request_id": random.getrandbits(63),
        "request_payload": instances,
        "response_payload": [orjson.dumps(prediction).decode() for prediction in predictions],
    }
