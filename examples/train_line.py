"""A tiny real training job: fits y = 2x + 1 with TensorFlow and writes a SavedModel to AIP_MODEL_DIR.

Runs unchanged on Vertex's prebuilt TensorFlow container and on the twin. TensorFlow's own gs://
filesystem cannot be pointed at an emulator, so the model is saved locally and uploaded with
google-cloud-storage, which honours STORAGE_EMULATOR_HOST.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path


def upload_tree(local: Path, uri: str) -> None:
    from google.cloud import storage

    bucket_name, _, prefix = uri.removeprefix("gs://").partition("/")
    bucket = storage.Client().bucket(bucket_name)
    for path in local.rglob("*"):
        if path.is_file():
            bucket.blob(prefix.rstrip("/") + "/" + str(path.relative_to(local))).upload_from_filename(str(path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--fail", action="store_true", help="exit with an error (for tests)")
    parser.add_argument("--sleep", type=float, default=0.0, help="wait this long first (for tests)")
    args = parser.parse_args()
    if args.sleep:
        print("sleeping", flush=True)
        import time

        time.sleep(args.sleep)
    if args.fail:
        print("tiny trainer: asked to fail", file=sys.stderr, flush=True)
        raise SystemExit(3)
    import tensorflow as tf  # after the test switches, so failing and sleeping jobs start fast

    class Line(tf.Module):
        def __init__(self, w, b):
            self.w = tf.Variable(w)
            self.b = tf.Variable(b)

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32)])
        def serve(self, x):
            return {"y": x * self.w + self.b}

    x = tf.random.stateless_uniform([64, 1], seed=[1, 2])
    y = 2.0 * x + 1.0
    model = Line(0.0, 0.0)
    opt = tf.keras.optimizers.SGD(0.5)
    for _ in range(args.steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model.serve(x)["y"] - y) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, [model.w, model.b]), [model.w, model.b], strict=False))
    print(f"trained: w={float(model.w.numpy()):.3f} b={float(model.b.numpy()):.3f} loss={float(loss):.6f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(model, tmp, signatures={"serving_default": model.serve})
        upload_tree(Path(tmp), os.environ["AIP_MODEL_DIR"])
    print("saved model to", os.environ["AIP_MODEL_DIR"], flush=True)


if __name__ == "__main__":
    main()
