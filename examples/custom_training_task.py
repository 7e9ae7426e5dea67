"""The training script of examples/custom_training.py (the sample's `task.py`): a small Keras CNN that tells
horizontal, vertical and diagonal bars apart in 8x8 images, saved as a SavedModel to AIP_MODEL_DIR.

Runs unchanged on Vertex's prebuilt TensorFlow training image and on the twin.
"""

import argparse
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.cloud import storage

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="gs:// URI of the training data (.npz with x and y)")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--lr", type=float, default=0.01)
args = parser.parse_args()

print(f"TensorFlow {tf.__version__}; TF_CONFIG = {os.environ.get('TF_CONFIG', 'not found')}", flush=True)


# TensorFlow's own gs:// filesystem has Google's host compiled in: it cannot be pointed at an emulator. So this
# script reads and writes gs:// through google-cloud-storage, which follows STORAGE_EMULATOR_HOST (set on the
# twin) and uses the job's service account on Vertex AI.
def split(uri: str) -> tuple[storage.Bucket, str]:
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return storage.Client().bucket(bucket), path


def read_npz(uri: str) -> dict:
    bucket, path = split(uri)
    return dict(np.load(io.BytesIO(bucket.blob(path).download_as_bytes())))


def upload_tree(local: Path, uri: str) -> None:
    bucket, prefix = split(uri)
    for path in local.rglob("*"):
        if path.is_file():
            bucket.blob(f"{prefix.rstrip('/')}/{path.relative_to(local)}").upload_from_filename(str(path))


data = read_npz(args.data)
model = tf.keras.Sequential(
    [
        tf.keras.Input(shape=(8, 8, 1)),
        tf.keras.layers.Conv2D(8, 3, activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(3, activation="softmax"),
    ]
)
model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=tf.keras.optimizers.Adam(learning_rate=args.lr),
    metrics=["accuracy"],
)
model.fit(data["x"], data["y"], epochs=args.epochs, batch_size=32, verbose=2)

MODEL_DIR = os.environ["AIP_MODEL_DIR"]  # set by the training service: <base_output_dir>/model/
with tempfile.TemporaryDirectory() as tmp:
    model.export(tmp)  # a SavedModel with a serving_default signature, what the TensorFlow serving image loads
    upload_tree(Path(tmp), MODEL_DIR)
print("saved the model to", MODEL_DIR, flush=True)
