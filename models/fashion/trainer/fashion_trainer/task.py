"""Trains the Fashion-MNIST CNN: the entry point of the Vertex AI CustomJob.

    python -m fashion_trainer.task --train URI --validation URI --test URI \
        --params-json JSON --metrics-uri URI [--model-dir URI]

URIs are gs://bucket/path or local paths. Inputs are the .npz files from prepare.py (`x` uint8
[N, 28, 28], `y` uint8 [N]). Writes a SavedModel (see fashion_trainer.model) to --model-dir or
else $AIP_MODEL_DIR, then the metrics JSON to --metrics-uri:
{"accuracy", "loss", "epochs": [{"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}...],
 "confusion_matrix" (10x10, rows true class), "test_rows", "train_rows"}.
Prints one `epoch N/M key=value ...` line per epoch. Bad --params-json or no model dir: one
line on stderr, exit 2. Any other failure raises (non-zero exit with the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from fashion_trainer import uris
from fashion_trainer.params import ParamsError, TrainParams, parse_params


def load_split(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 [N, 784], y int64 [N]) from a prepare.py .npz file; ValueError if malformed."""
    with np.load(path) as data:
        if "x" not in data or "y" not in data:
            raise ValueError(f"{name} file {path} must hold arrays 'x' and 'y', has {sorted(data.files)}")
        x, y = data["x"], data["y"]
    if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"{name} file {path}: expected x [N, 28, 28] and y [N], got {x.shape} and {y.shape}")
    return x.reshape(len(x), -1).astype(np.float32), y.astype(np.int64)


def train(args: argparse.Namespace, params: TrainParams, model_dir: str) -> dict:
    """Runs the whole job; returns the metrics it wrote."""
    import tensorflow as tf

    from fashion_trainer.model import EpochLines, build_model, classification_metrics, save_serving_model

    with tempfile.TemporaryDirectory(prefix="fashion-trainer-") as tmp:
        work = Path(tmp)
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
            load_split(uris.fetch(uri, work), name)
            for name, uri in (("train", args.train), ("validation", args.validation), ("test", args.test))
        )
        if params.train_limit:
            x_train, y_train = x_train[: params.train_limit], y_train[: params.train_limit]
        print(f"data: train={len(x_train)} validation={len(x_val)} test={len(x_test)} rows", flush=True)

        tf.keras.utils.set_random_seed(params.seed)
        model = build_model(params)
        epochs = EpochLines(params.epochs)
        model.fit(
            x_train,
            y_train,
            batch_size=params.batch_size,
            epochs=params.epochs,
            validation_data=(x_val, y_val),
            shuffle=True,
            verbose=0,
            callbacks=[epochs],
        )
        metrics = classification_metrics(model.predict(x_test, batch_size=1024, verbose=0), y_test)
        print(f"test: accuracy={metrics['accuracy']:.4f} loss={metrics['loss']:.4f}", flush=True)

        if uris.is_gcs(model_dir):
            save_serving_model(model, work / "model")
            uris.upload_tree(work / "model", model_dir)
        else:
            save_serving_model(model, Path(model_dir))
        print(f"model: saved to {model_dir}", flush=True)

    result = {
        "accuracy": metrics["accuracy"],
        "loss": metrics["loss"],
        "epochs": epochs.history,
        "confusion_matrix": metrics["confusion_matrix"],
        "test_rows": len(x_test),
        "train_rows": len(x_train),
    }
    uris.write_text(args.metrics_uri, json.dumps(result))
    print(f"metrics: written to {args.metrics_uri}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fashion_trainer.task", description="Trains the Fashion-MNIST CNN.")
    parser.add_argument("--train", required=True, help="train.npz (gs:// or local)")
    parser.add_argument("--validation", required=True, help="validation.npz (gs:// or local)")
    parser.add_argument("--test", required=True, help="test.npz (gs:// or local)")
    parser.add_argument("--params-json", required=True, help="the `train:` section of params.yaml as JSON")
    parser.add_argument("--metrics-uri", required=True, help="where to write the metrics JSON")
    parser.add_argument("--model-dir", help="SavedModel directory (default: $AIP_MODEL_DIR, set by Vertex)")
    args = parser.parse_args(argv)
    try:
        params = parse_params(args.params_json)
    except ParamsError as exc:
        print(f"fashion_trainer: bad --params-json: {exc}", file=sys.stderr)
        return 2
    model_dir = args.model_dir or os.environ.get("AIP_MODEL_DIR")
    if not model_dir:
        print("fashion_trainer: no model directory: pass --model-dir or set AIP_MODEL_DIR", file=sys.stderr)
        return 2
    train(args, params, model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
