"""Beyond one machine on the twin: the CNN trained on 1 and on 2 replicas, and a batch prediction of the test images.

    .venv/bin/python benchmarks/scale_out.py [--epochs 5] [--train-limit 0] [--images 10000]

Copies this project into a temp folder (a fresh user repository), sets `train: epochs` (and `train_limit`), runs
`invoke init` and `data.seed`, then:
  - `invoke train` (1 replica), then `invoke train --replicas 2 --force` (a chief and a worker, each its own process,
    MultiWorkerMirroredStrategy over 127.0.0.1): wall time of the command, run time of the CustomJob (its
    startTime to endTime, from the SDK), test accuracy of each (the trainer's metrics.json) and the evaluation's
    (the evaluate stage's evaluation.json), side by side;
  - `invoke predict --batch FILE --version 1` over the first --images held-out test images (JSON Lines of 784 pixel
    values): images/s of the command, of the job (startTime to endTime: the worker's start, model load, reading
    and writing the bucket included) and of the worker's prediction of the file (its log line), against the same
    SavedModel called in this process on batches of 64; the accuracy computed from the job's results, read with
    the SDK's `BatchPredictionJob.iter_outputs()`, beside the evaluation's.
Figures only: this machine has 2 cores and is shared, so nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tests.support import commit, copy_project, set_train_params  # noqa: E402  (a fresh user repository)

OUTPUTS = Path("models/fashion/outputs")
BATCH = 64


def run(repo: Path, *args: str) -> tuple[float, str]:
    """Wall time and stdout of `invoke ARGS` in the repository; exits with its output if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "EDGE_HOME": str(repo / ".edge")},
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"invoke {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def seconds(resource) -> float:
    """startTime to endTime of a job resource (the SDK's proto-plus message)."""
    return (resource.end_time - resource.start_time).total_seconds()


def train(repo: Path, project, *args: str) -> dict:
    """`invoke train ARGS`: the command's wall time, the job's run time, the test and evaluation accuracy."""
    wall, _ = run(repo, "train", *args)
    outputs = repo / OUTPUTS
    record = json.loads((outputs / "model.json").read_text())
    job = project.vertex().CustomJob.get(record["job"])
    return {
        "replicas": record.get("replicas", 1),
        "version": record["version"],
        "wall": wall,
        "job": seconds(job.gca_resource),
        "accuracy": json.loads((outputs / "metrics.json").read_text())["accuracy"],
        "evaluation": json.loads((outputs / "evaluation.json").read_text())["accuracy"],
    }


def in_process_rate(model_dir: Path, images: np.ndarray, rounds: int = 3) -> float:
    """Images/s of the SavedModel's serving signature called in this process on batches of BATCH (best of
    `rounds` passes over `images`)."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    pixels = images.astype(np.float32)
    signature(pixels=tf.constant(pixels[:BATCH]))  # by keyword: a positional call is ~15x slower
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(0, len(pixels), BATCH):
            signature(pixels=tf.constant(pixels[i : i + BATCH]))
        best = max(best, len(pixels) / (time.perf_counter() - start))
    return best


def download_model(project, model_uri: str, folder: Path) -> Path:
    """The version's artifact (gs://...) copied into `folder`."""
    bucket_name, _, prefix = model_uri.removeprefix("gs://").partition("/")
    bucket = project.target.storage_client().bucket(bucket_name)
    for blob in bucket.list_blobs(prefix=prefix.rstrip("/") + "/"):
        path = folder / blob.name[len(prefix.rstrip("/")) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))
    return folder


def batch(repo: Path, project, version: str, count: int) -> dict:
    """`invoke predict --batch` over the first `count` test images: rates, accuracy from the outputs."""
    with np.load(repo / "data/prepared/fashion/test.npz") as data:
        images, labels = data["x"][:count].reshape(count, -1), data["y"][:count]
    source = repo / "instances.jsonl"
    source.write_text("".join(json.dumps(image.tolist()) + "\n" for image in images))
    wall, out = run(repo, "predict", "--batch", str(source), "--version", version)
    name = re.search(r"batch prediction (\S+) ", out).group(1)
    job = project.vertex().BatchPredictionJob(name)
    spec = project.spec(project.config.model(None))
    predicted = []
    for blob in sorted(job.iter_outputs(), key=lambda b: b.name):
        if "prediction.results" in blob.name:
            rows = [json.loads(line) for line in blob.download_as_text().splitlines() if line]
            predicted += [spec.read_prediction(row["prediction"])["class_id"] for row in rows]
    text, _ = project.target.read_job_log(name, 0)
    worker = float(re.search(r"(\d+) predicted, 0 failed \(([\d.]+) s\)", text).group(2))
    resource = job.gca_resource
    model_uri = project.vertex().Model(resource.model, version=resource.model_version_id).uri
    with tempfile.TemporaryDirectory() as tmp:
        in_process = in_process_rate(download_model(project, model_uri, Path(tmp)), images)
    return {
        "images": count,
        "wall": count / wall,
        "job": count / seconds(job.gca_resource),
        "worker": count / worker,
        "in_process": in_process,
        "accuracy": float(np.mean(np.array(predicted) == labels)),
        "predicted": len(predicted),
    }


def show_training(one: dict, two: dict) -> None:
    print(f"\ntraining the CNN on the twin ({'1 vs 2 replicas':>15})   1 replica    2 replicas")
    print(f"{'invoke train, wall time (s)':44}{one['wall']:10.1f}{two['wall']:14.1f}")
    print(f"{'CustomJob run time (s)':44}{one['job']:10.1f}{two['job']:14.1f}")
    print(f"{'test accuracy (trainer)':44}{one['accuracy']:10.4f}{two['accuracy']:14.4f}")
    print(f"{'test accuracy (evaluation)':44}{one['evaluation']:10.4f}{two['evaluation']:14.4f}")
    print(f"{'difference (2 replicas - 1)':44}{'':10}{two['accuracy'] - one['accuracy']:+14.4f}")


def show_batch(result: dict, evaluation: float) -> None:
    rate = result["in_process"]
    print(f"\nbatch prediction of {result['images']} test images on the twin   images/s   x in-process")
    print(f"{'in-process SavedModel, batches of 64':52}{rate:8.0f}{1.0:10.2f}")
    for key, what in (
        ("worker", "the job's worker, predicting the file"),
        ("job", "the job, start to end"),
        ("wall", "invoke predict --batch, wall time"),
    ):
        print(f"{what:52}{result[key]:8.0f}{result[key] / rate:10.2f}")
    print(f"accuracy from the outputs ({result['predicted']} results): {result['accuracy']:.4f}")
    print(f"accuracy of the evaluation (same version, held-out test split): {evaluation:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="train: epochs (default 5)")
    parser.add_argument("--train-limit", type=int, default=0, help="train: train_limit (default 0: all rows)")
    parser.add_argument("--images", type=int, default=10000, help="test images to batch-predict")
    args = parser.parse_args()
    from edge.twin import process

    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_project(Path(tmp))
        set_train_params(repo, epochs=args.epochs, train_limit=args.train_limit)
        commit(repo, "benchmark params")
        os.environ["EDGE_HOME"] = str(repo / ".edge")
        try:
            run(repo, "init")
            run(repo, "data.seed")
            from edge.project import open_project

            project = open_project(repo, "twin")
            one = train(repo, project)
            two = train(repo, project, "--replicas", "2", "--force")
            show_training(one, two)
            show_batch(batch(repo, project, one["version"], args.images), one["evaluation"])
        finally:
            process.down(repo / ".edge" / "twin")


if __name__ == "__main__":
    main()
