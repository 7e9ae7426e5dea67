"""Trains the Fashion-MNIST CNN: the entry point of the Vertex AI CustomJob.

    python -m fashion_trainer.task --train URI --validation URI --test URI \
        --params-json JSON [--metrics-uri URI] [--model-dir URI] [--learning_rate=0.002 ...]

URIs are gs://bucket/path or local paths. Inputs are the .npz files from prepare.py (`x` uint8
[N, 28, 28], `y` uint8 [N]). `--NAME=VALUE` for a param of `train:` (learning_rate, dense, filters...)
overrides its value in --params-json: a Vertex hyperparameter tuning trial appends its parameters so.
Writes a SavedModel (see fashion_trainer.model) to --model-dir or else $AIP_MODEL_DIR, then the
metrics JSON to --metrics-uri (default: metrics.json beside the model directory):
{"accuracy", "loss", "epochs": [{"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}...],
 "confusion_matrix" (10x10, rows true class), "test_rows", "train_rows"}.
Prints one `epoch N/M key=value ...` line per epoch, and reports `val_accuracy` and `val_loss` per
epoch for hyperparameter tuning (fashion_trainer.hypertune). With a TF_CONFIG of several tasks (a
Vertex job of several replicas) it trains with MultiWorkerMirroredStrategy and only the chief writes
(fashion_trainer.distribute). Bad --params-json, a bad override or no model dir: one line on stderr,
exit 2. Any other failure raises (non-zero exit with the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np

from fashion_trainer import uris
from fashion_trainer.params import ParamsError, TrainParams, parse_params

TUNING_METRICS = ("val_accuracy", "val_loss")  # reported each epoch; a tuning job optimises one of them


def load_split(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 [N, 784], y int64 [N]) from a prepare.py .npz file; ValueError if malformed."""
    with np.load(path) as data:
        if "x" not in data or "y" not in data:
            raise ValueError(f"{name} file {path} must hold arrays 'x' and 'y', has {sorted(data.files)}")
        x, y = data["x"], data["y"]
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"{name} file {path}: expected x [N, 28, 28] and y [N], got {x.shape} and {y.shape}")
    return x.reshape(len(x), -1).astype(np.float32), y.astype(np.int64)


def train(args: argparse.Namespace, params: TrainParams, model_dir: str, metrics_uri: str) -> dict | None:
    """Runs the whole job on this replica; returns the metrics the chief wrote (None on other replicas)."""
    from fashion_trainer import distribute

    strategy = distribute.make_strategy()  # before any other TensorFlow op, as MultiWorkerMirroredStrategy needs
    chief = distribute.is_chief()
    with tempfile.TemporaryDirectory(prefix="fashion-trainer-") as tmp:
        work = Path(tmp)
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
            load_split(uris.fetch(uri, work), name)
            for name, uri in (("train", args.train), ("validation", args.validation), ("test", args.test))
        )
        if params.train_limit:
            x_train, y_train = x_train[: params.train_limit], y_train[: params.train_limit]
        print(f"data: train={len(x_train)} validation={len(x_val)} test={len(x_test)} rows", flush=True)
        kind, index, tasks = distribute.cluster()
        if tasks > 1:
            print(f"replica: {kind} {index} of a cluster of {tasks}; global batch {params.batch_size}", flush=True)
        model, history = _fit(strategy, params, (x_train, y_train), (x_val, y_val), report=chief)
        metrics = _test_metrics(model, x_test, y_test)
        _save(model, model_dir if chief else str(work / "replica-model"), work)
        if not chief:
            print("model: saved to a temporary directory and deleted (only the chief writes)", flush=True)
            return None
        print(f"model: saved to {model_dir}", flush=True)
    result = {**metrics, "epochs": history, "test_rows": len(x_test), "train_rows": len(x_train)}
    uris.write_text(metrics_uri, json.dumps(result))
    print(f"metrics: written to {metrics_uri}", flush=True)
    return result


def _fit(strategy, params: TrainParams, train_data: tuple, validation_data: tuple, report: bool):
    """The trained model and its history; with `report`, each epoch's TUNING_METRICS go to the tuning service."""
    import tensorflow as tf

    from fashion_trainer import distribute
    from fashion_trainer.hypertune import MetricReporter
    from fashion_trainer.model import EpochLines, build_model, make_optimizer

    tf.keras.utils.set_random_seed(params.seed)
    lines, reporter = EpochLines(params.epochs), MetricReporter() if report else None

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        lines(epoch, logs)
        for tag in TUNING_METRICS if reporter else ():
            reporter.report(tag, logs[tag], epoch)

    model = distribute.train(
        strategy,
        lambda: (build_model(params, compile=False), make_optimizer(params)),
        train_data,
        validation_data,
        params.epochs,
        params.batch_size,
        params.seed,
        on_epoch,
    )
    return model, lines.history


def _test_metrics(model, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    from fashion_trainer import distribute
    from fashion_trainer.model import classification_metrics

    _, _, probabilities = distribute.evaluate(model, x_test, y_test)
    metrics = classification_metrics(probabilities, y_test)
    print(f"test: accuracy={metrics['accuracy']:.4f} loss={metrics['loss']:.4f}", flush=True)
    return metrics


def _save(model, model_dir: str, work: Path) -> None:
    from fashion_trainer.model import save_serving_model

    if uris.is_gcs(model_dir):
        save_serving_model(model, work / "model")
        uris.upload_tree(work / "model", model_dir)
    else:
        save_serving_model(model, Path(model_dir))


def default_metrics_uri(model_dir: str) -> str:
    """metrics.json beside the model directory: <base>/metrics.json for AIP_MODEL_DIR <base>/model/ (a tuning
    trial's base is <job base>/<trial id>, so every trial writes its own)."""
    return f"{model_dir.rstrip('/').rsplit('/', 1)[0]}/metrics.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fashion_trainer.task", description="Trains the Fashion-MNIST CNN.")
    parser.add_argument("--train", required=True, help="train.npz (gs:// or local)")
    parser.add_argument("--validation", required=True, help="validation.npz (gs:// or local)")
    parser.add_argument("--test", required=True, help="test.npz (gs:// or local)")
    parser.add_argument("--params-json", required=True, help="the `train:` section of params.yaml as JSON")
    parser.add_argument("--metrics-uri", help="where to write the metrics JSON (default: beside the model dir)")
    parser.add_argument("--model-dir", help="SavedModel directory (default: $AIP_MODEL_DIR, set by Vertex)")
    names = [f.name for f in fields(TrainParams)]
    for name in names:
        parser.add_argument(f"--{name}", metavar="VALUE", help=f"overrides {name} of --params-json")
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        params = parse_params(args.params_json, overrides)
    except ParamsError as exc:
        print(f"fashion_trainer: bad --params-json: {exc}", file=sys.stderr)
        return 2
    model_dir = args.model_dir or os.environ.get("AIP_MODEL_DIR")
    if not model_dir:
        print("fashion_trainer: no model directory: pass --model-dir or set AIP_MODEL_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines out of the job's log
    train(args, params, model_dir, args.metrics_uri or default_metrics_uri(model_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
