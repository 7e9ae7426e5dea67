"""The trainer's SavedModel, exported by the TensorFlow of the pinned training image, loads and answers in the
TensorFlow of the pinned serving image the way TF Serving loads it (graph-mode loader, tag `serve`, signature
`serving_default` looked up by name).

Opt-in: it needs a Python with that exact TensorFlow, which edge's own venv does not have (it runs 2.21):

    python3.11 -m venv /tmp/tf215 && /tmp/tf215/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2"
    EDGE_SERVING_TF_PYTHON=/tmp/tf215/bin/python .venv/bin/pytest tests/infra/test_serving_compat.py

Without EDGE_SERVING_TF_PYTHON it is skipped. infra/README.md records the run and its result.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge import config as edge_config
from edge import infra
from tests.support import ROOT

PYTHON = os.environ.get("EDGE_SERVING_TF_PYTHON", "")
pytestmark = pytest.mark.skipif(not PYTHON, reason="set EDGE_SERVING_TF_PYTHON to a Python with the pinned TensorFlow")
TRAINER = ROOT / "models" / "fashion" / "trainer"
# The model's payload, or where it was before models/fashion/ had one.
PAYLOADS = (ROOT / "models" / "fashion" / "test_payload.json", ROOT / "test_payload.json")
PARAMS = {"epochs": 1, "batch_size": 64, "learning_rate": 0.001, "seed": 1, "filters": [8, 16], "dense": 16}
# TF Serving's way: the session-based loader restores the variables, then runs the signature's tensors by name.
SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
instances = np.array(json.load(open(sys.argv[2]))["instances"], dtype=np.float32)
with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], sys.argv[1])
    signature = meta.signature_def["serving_default"]
    fetches = {k: v.name for k, v in signature.outputs.items()}
    out = session.run(fetches, {signature.inputs["pixels"].name: instances})
answer = {"class_id": out["class_id"].tolist(), "shape": list(out["probabilities"].shape)}
print(json.dumps({"tf": tf.__version__, **answer}))
"""


def pinned_version() -> str:
    """The TensorFlow version of the repository's edge.yaml images (the same for training and serving)."""
    listed = infra.container_images(ROOT)["images"]
    (model, *_) = edge_config.load(ROOT).models.values()
    versions = {listed[model.training.image]["version"], listed[model.serving.image]["version"]}
    assert len(versions) == 1
    return versions.pop()


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, env=env, timeout=600, **kwargs)


def test_the_python_has_the_pinned_tensorflow():
    result = run("-c", "import tensorflow as tf; print(tf.__version__)")
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.strip().startswith(pinned_version() + "."), result.stdout


def test_the_trainers_savedmodel_serves_in_the_pinned_version(tmp_path: Path):
    rng = np.random.default_rng(0)
    for split, rows in (("train", 256), ("validation", 64), ("test", 64)):
        x = rng.integers(0, 256, (rows, 28, 28), dtype=np.uint8)
        np.savez(tmp_path / f"{split}.npz", x=x, y=rng.integers(0, 10, rows, dtype=np.uint8))
    params = {**PARAMS, "dropout": 0.1, "train_limit": 0}
    trained = run(
        "-m",
        "fashion_trainer.task",
        *(f"--{split}={tmp_path / f'{split}.npz'}" for split in ("train", "validation", "test")),
        f"--params-json={json.dumps(params)}",
        f"--metrics-uri={tmp_path / 'metrics.json'}",
        f"--model-dir={tmp_path / 'model'}",
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    payload = next(path for path in PAYLOADS if path.exists())
    served = run("-c", SERVE, str(tmp_path / "model"), str(payload))
    assert served.returncode == 0, served.stderr[-2000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert answer["tf"].startswith(pinned_version() + ".")
    assert answer["shape"] == [3, 10] and len(answer["class_id"]) == 3
