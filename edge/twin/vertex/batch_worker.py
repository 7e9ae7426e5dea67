"""The process that runs one batch prediction job of the twin (batch.py starts it under the lifeline supervisor).

    python -m edge.twin.vertex.batch_worker --model-dir DIR --input gs://... [--input ...] --output-dir gs://...
        [--batch-size 64] [--progress FILE]

Loads the model with the predictor the model servers use (`load_predictor`), reads each input file (JSON Lines,
one instance per line, through google-cloud-storage: STORAGE_EMULATOR_HOST points it at the twin), predicts in
batches and writes what Vertex writes for a custom model: `prediction.results-0000I-of-0000N` (one per input file)
of `{"instance": ..., "prediction": ...}` lines and, when some lines failed, `prediction.errors_stats-00000-of-00001`
of `{"instance": ..., "error": {"code": 3, "message": ...}}` lines (a line that is not JSON keeps its text as the
instance). A bad line never stops the job. --progress gets {"successfulCount", "failedCount"} after every batch.
A model that cannot be loaded: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from edge.twin.errors import InvalidArgument
from edge.twin.vertex.serving.errors import first_line

DEFAULT_BATCH = 64
PROGRESS_SECONDS = 0.5


class Outputs:
    """Counts, the errors file's lines, and the progress file."""

    def __init__(self, progress: Path | None):
        self.progress = progress
        self.successful = self.failed = 0
        self.errors: list[bytes] = []
        self.written = 0.0

    def error(self, instance, message: str, code: int = 3) -> None:
        self.failed += 1
        self.errors.append(orjson.dumps({"instance": instance, "error": {"code": code, "message": message}}))

    def report(self, final: bool = False) -> None:
        if self.progress is None or not final and time.monotonic() - self.written < PROGRESS_SECONDS:
            return
        partial = self.progress.with_name(self.progress.name + ".partial")
        partial.write_bytes(orjson.dumps({"successfulCount": self.successful, "failedCount": self.failed}))
        os.replace(partial, self.progress)
        self.written = time.monotonic()


def _instance_problem(predictor, instance) -> str | None:
    from edge.twin.vertex.serving.payload import parse_instances

    try:
        parse_instances({"instances": [instance]}, predictor.inputs, 1)
    except InvalidArgument as exc:
        return exc.message.removeprefix("instance 0, ").removeprefix("instance 0 ")
    return None


def _result(line: bytes, prediction) -> bytes:
    """A results line; the instance is echoed as it was given (it parsed as JSON)."""
    return b'{"instance":' + line + b',"prediction":' + orjson.dumps(prediction) + b"}"


def _batches(lines, batch_size: int) -> Iterator[list[tuple[bytes, object, str | None]]]:
    """The lines in batches of `batch_size` instances: (line, instance, None), or (line, text, why) for a line
    that is not JSON (it travels with its batch, so that the errors keep the input's order)."""
    batch: list = []
    valid = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        try:
            batch.append((line, orjson.loads(line), None))
            valid += 1
        except orjson.JSONDecodeError as exc:
            batch.append((line, line.decode(errors="replace"), f"The line is not valid JSON: {exc}"))
        if valid == batch_size:
            yield batch
            batch, valid = [], 0
    if batch:
        yield batch


def _stacked(predictor, batches) -> Iterator[tuple[list, dict | None]]:
    """Each batch with its input arrays (None when some instance is bad: the batch is then taken apart)."""
    from edge.twin.vertex.serving.payload import parse_instances

    for batch in batches:
        instances = [value for _, value, problem in batch if problem is None]
        inputs = None
        if instances and len(instances) == len(batch):
            try:
                inputs, _ = parse_instances({"instances": instances}, predictor.inputs, len(instances))
            except InvalidArgument:
                pass
        yield batch, inputs


def _ahead(items: Iterator, depth: int = 2) -> Iterator:
    """`items`, produced by a thread of their own up to `depth` ahead: parsing the next batch overlaps the model
    running this one (TensorFlow releases the GIL while it computes)."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    end = object()

    def produce() -> None:
        try:
            for item in items:
                ready.put(item)
        except BaseException as exc:  # handed to the consumer
            ready.put(exc)
        ready.put(end)

    threading.Thread(target=produce, name="batch-parser", daemon=True).start()
    while (item := ready.get()) is not end:
        if isinstance(item, BaseException):
            raise item
        yield item


def predict_batch(predictor, batch: list, inputs: dict | None, outputs: Outputs) -> list[bytes]:
    """Result lines of a batch's instances that could be predicted; the others go to the errors."""
    from edge.twin.vertex.serving.payload import format_predictions, parse_instances

    if inputs is None:
        problems = [why or _instance_problem(predictor, value) for _, value, why in batch]
        for (_, value, _), problem in zip(batch, problems, strict=True):
            if problem is not None:
                outputs.error(value, problem)
        batch = [entry for entry, problem in zip(batch, problems, strict=True) if problem is None]
        if not batch:
            return []
        try:
            inputs, _ = parse_instances({"instances": [value for _, value, _ in batch]}, predictor.inputs, len(batch))
        except InvalidArgument:  # each alone is fine, together they are not (their shapes differ): one by one
            return [line for entry in batch for line in predict_batch(predictor, [entry], None, outputs)]
    try:
        predictions = format_predictions(predictor.run(inputs))
    except Exception as exc:  # the model failed on valid instances
        for _, value, _ in batch:
            outputs.error(value, f"The model failed: {first_line(exc)}", code=13)
        return []
    outputs.successful += len(batch)
    return [_result(line, p) for (line, _, _), p in zip(batch, predictions, strict=True)]


def predict_file(predictor, lines, batch_size: int, outputs: Outputs) -> list[bytes]:
    """Result lines of one input file's lines (bytes), in order; bad lines counted in `outputs`."""
    results: list[bytes] = []
    for batch, inputs in _ahead(_stacked(predictor, _batches(lines, batch_size))):
        results += predict_batch(predictor, batch, inputs, outputs)
        outputs.report()
    outputs.report()
    return results


def _blob(client, uri: str):
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return client.bucket(bucket).blob(name)


def run(args: argparse.Namespace) -> int:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from edge.twin.vertex.serving.predictor import load_predictor

    try:
        predictor = load_predictor(args.model_dir)
    except Exception as exc:
        print(f"batch prediction: cannot load the model: {first_line(exc)}", file=sys.stderr, flush=True)
        return 2
    client = storage.Client(project="twin", credentials=AnonymousCredentials())
    outputs, count = Outputs(args.progress), len(args.input)
    print(f"[twin] model loaded; {count} input file(s), batches of {args.batch_size}", flush=True)
    for index, uri in enumerate(args.input):
        started, before = time.monotonic(), (outputs.successful, outputs.failed)
        lines = _blob(client, uri).download_as_bytes().splitlines()
        results = predict_file(predictor, lines, args.batch_size, outputs)
        name = f"{args.output_dir}/prediction.results-{index:05d}-of-{count:05d}"
        _blob(client, name).upload_from_string(b"\n".join(results) + b"\n" if results else b"")
        print(
            f"[twin] {uri}: {outputs.successful - before[0]} predicted, {outputs.failed - before[1]} failed "
            f"({time.monotonic() - started:.1f} s)",
            flush=True,
        )
    if outputs.errors:
        name = f"{args.output_dir}/prediction.errors_stats-00000-of-00001"
        _blob(client, name).upload_from_string(b"\n".join(outputs.errors) + b"\n")
    outputs.report(final=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.twin.vertex.batch_worker", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="the model version's artifact, fetched")
    parser.add_argument("--input", action="append", required=True, help="a gs:// JSON Lines file (repeatable)")
    parser.add_argument("--output-dir", required=True, help="gs:// directory of the result files")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="instances per model call")
    parser.add_argument("--progress", type=Path, help="file that gets the counts as they grow")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
