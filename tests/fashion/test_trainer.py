"""fashion_trainer on a small subset of the real data: SavedModel contract, metrics, CLI errors, packaging."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import numpy as np
import pytest
import yaml

from tests.fashion.conftest import PARAMS, TRAINER_SRC, run_trainer

EPOCH_LINE = re.compile(r"^epoch 1/1 loss=[\d.]+ accuracy=[\d.]+ val_loss=[\d.]+ val_accuracy=[\d.]+$")
TRAIN_ROWS = 2000


def small_params(**overrides) -> dict:
    """The default `train:` params, cut down to one epoch on TRAIN_ROWS rows."""
    params = yaml.safe_load(PARAMS.read_text())["train"]
    return {**params, "epochs": 1, "train_limit": TRAIN_ROWS, **overrides}


def data_args(prepared) -> list[str]:
    return [
        "--train",
        str(prepared / "train.npz"),
        "--validation",
        str(prepared / "validation.npz"),
        "--test",
        str(prepared / "test.npz"),
    ]


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory):
    """One small training run with local paths; the model dir comes from AIP_MODEL_DIR, as on Vertex."""
    out = tmp_path_factory.mktemp("trained")
    result = run_trainer(
        *data_args(prepared),
        "--params-json",
        json.dumps(small_params()),
        "--metrics-uri",
        str(out / "eval" / "metrics.json"),
        env={"AIP_MODEL_DIR": str(out / "model") + "/"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result


@pytest.fixture(scope="module")
def serving(trained):
    """The `serving_default` signature of the SavedModel the run wrote."""
    import tensorflow as tf

    return tf.saved_model.load(str(trained[0] / "model")).signatures["serving_default"]


def test_prints_one_parsable_line_per_epoch(trained):
    lines = [line for line in trained[1].stdout.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 1 and EPOCH_LINE.match(lines[0]), trained[1].stdout


def test_writes_metrics_json_with_one_epoch(trained):
    metrics = json.loads((trained[0] / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "loss", "epochs", "confusion_matrix", "test_rows", "train_rows"}
    assert metrics["train_rows"] == TRAIN_ROWS and metrics["test_rows"] == 10000
    assert [e["epoch"] for e in metrics["epochs"]] == [1]
    assert set(metrics["epochs"][0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 10000
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / 10000)
    assert 0.5 < metrics["accuracy"] <= 1 and metrics["loss"] > 0


def test_serving_signature_takes_784_float_pixels_and_returns_class_ids_and_probabilities(serving):
    import tensorflow as tf

    (_, inputs), outputs = serving.structured_input_signature, serving.structured_outputs
    assert list(inputs) == ["pixels"]
    assert inputs["pixels"].dtype == tf.float32 and inputs["pixels"].shape.as_list() == [None, 784]
    assert outputs["class_id"].dtype == tf.int64 and outputs["class_id"].shape.as_list() == [None]
    assert outputs["probabilities"].dtype == tf.float32 and outputs["probabilities"].shape.as_list() == [None, 10]


def test_serving_maps_raw_test_pixels_to_classes_with_probabilities_summing_to_one(serving, prepared):
    import tensorflow as tf

    with np.load(prepared / "test.npz") as data:
        pixels = data["x"][:64].reshape(64, 784).astype(np.float32)  # raw 0..255, as in test_payload.json
        labels = data["y"][:64]
    out = serving(pixels=tf.constant(pixels))
    probabilities, class_id = out["probabilities"].numpy(), out["class_id"].numpy()
    assert probabilities.shape == (64, 10) and class_id.shape == (64,)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (class_id == probabilities.argmax(axis=1)).all()
    assert (class_id == labels).mean() > 0.5


@pytest.mark.parametrize(
    "params_json, mentions",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({k: v for k, v in small_params().items() if k != "dropout"}), "dropout"),
        (json.dumps(small_params(epochs="5")), "epochs"),
        (json.dumps(small_params(filters=[32, 0])), "filters"),
        (json.dumps(small_params(learning_rate=-0.1)), "learning_rate"),
        (json.dumps(small_params(extra=1)), "extra"),
    ],
)
def test_bad_params_json_exits_2_with_one_line(tmp_path, params_json, mentions):
    result = run_trainer(
        "--train",
        "t",
        "--validation",
        "v",
        "--test",
        "t",
        "--params-json",
        params_json,
        "--metrics-uri",
        str(tmp_path / "m.json"),
        "--model-dir",
        str(tmp_path / "model"),
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and mentions in result.stderr, result.stderr


def test_missing_model_dir_exits_2_with_one_line(tmp_path):
    result = run_trainer(
        "--train",
        "t",
        "--validation",
        "v",
        "--test",
        "t",
        "--params-json",
        json.dumps(small_params()),
        "--metrics-uri",
        str(tmp_path / "m.json"),
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "AIP_MODEL_DIR" in result.stderr


def test_gs_uris_go_through_google_cloud_storage(bucket, tmp_path, monkeypatch):
    """Download, tree upload and text writes against the twin's storage (what the job does on Vertex)."""
    monkeypatch.syspath_prepend(str(TRAINER_SRC))
    from fashion_trainer import uris

    base = f"gs://{bucket.name}/fashion-tests/{uuid.uuid4().hex[:8]}"
    bucket.blob(base.split("/", 3)[3] + "/train.npz").upload_from_string(b"npz bytes")
    (tmp_path / "in").mkdir()
    assert uris.fetch(f"{base}/train.npz", tmp_path / "in").read_bytes() == b"npz bytes"
    (tmp_path / "model" / "variables").mkdir(parents=True)
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "model" / "variables" / "variables.index").write_bytes(b"index")
    assert uris.upload_tree(tmp_path / "model", f"{base}/model/") == 2
    uris.write_text(f"{base}/metrics.json", '{"accuracy": 1}')
    names = sorted(b.name.split("/", 2)[2] for b in bucket.list_blobs(prefix=base.split("/", 3)[3]))
    assert names == ["metrics.json", "model/saved_model.pb", "model/variables/variables.index", "train.npz"]


def test_package_builds_as_sdist_and_installs_without_dependencies(tmp_path):
    """As the Vertex SDK and the twin do: `setup.py sdist`, then `pip install --no-deps`."""
    subprocess.run(
        [
            sys.executable,
            "setup.py",
            "-q",
            "egg_info",
            "--egg-base",
            str(tmp_path),
            "sdist",
            "--dist-dir",
            str(tmp_path / "dist"),
        ],
        cwd=TRAINER_SRC,
        check=True,
        capture_output=True,
    )
    (archive,) = (tmp_path / "dist").iterdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(tmp_path / "site"),
            str(archive),
        ],
        check=True,
        capture_output=True,
    )
    installed = {p.name for p in (tmp_path / "site" / "fashion_trainer").iterdir()}
    assert {"__init__.py", "task.py", "model.py", "params.py", "uris.py"} <= installed
