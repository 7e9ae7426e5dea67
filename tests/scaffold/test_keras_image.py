"""The keras-image template of `invoke model.init`: on tiny images the test draws, its prepare step and trainer run
as DVC and Vertex run them, and the SavedModel it exports is served by the twin's model server as Vertex's
TensorFlow container would serve it (the test payload in, class ids and probabilities out)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import requests
import yaml

from edge import config as edge_config
from edge import scaffold
from edge.models import load_spec
from edge.twin.vertex.serving import start_model_server, stop_model_server
from tests.scaffold.conftest import run, write_images

pytestmark = pytest.mark.timeout(300)

NAME = "shapes"
CLASSES = ["columns", "rows", "square"]  # the subfolders, sorted


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """The keras-image model scaffolded into a bare project, its prepare stage run on 60 images of 12x12 pixels
    (resized to 8x8) and its trainer run for 3 epochs with the model directory from AIP_MODEL_DIR, as on Vertex."""
    from tests.scaffold.conftest import ROOT

    project = tmp_path_factory.mktemp("keras-image")
    (project / "edge.yaml").write_text((ROOT / "edge.yaml").read_text())
    scaffold.init_model(project, NAME, "keras-image")
    folder = project / "models" / NAME
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["prepare"].update(height=8, width=8)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_images(project / "data" / NAME)
    command = yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]["prepare"]["cmd"].split()
    prepared = run([sys.executable, *command[1:]], cwd=folder)
    assert prepared.returncode == 0, prepared.stderr
    data, out = project / "data" / "prepared" / NAME, project / "run"
    train = {**params["train"], "epochs": 3, "filters": [8], "dense": 16}
    result = run(
        [
            sys.executable,
            "-m",
            "shapes_trainer.task",
            *(f"--{s}={data}/{s}.npz" for s in ("train", "validation", "test")),
        ]
        + [f"--params-json={json.dumps(train)}"],
        cwd=folder / "trainer",
        env={"AIP_MODEL_DIR": f"{out}/model/", "PYTHONPATH": str(folder / "trainer"), "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {"project": project, "folder": folder, "out": out, "stdout": result.stdout}


def test_prepare_names_the_classes_by_their_folders_and_writes_a_payload_of_flat_images(trained):
    schema = json.loads((trained["folder"] / "schema.json").read_text())
    assert (schema["labels"], schema["height"], schema["width"], schema["channels"]) == (CLASSES, 8, 8, 1)
    project = trained["project"]
    spec = load_spec(project, edge_config.load(project).models[NAME])
    assert list(spec.labels) == CLASSES
    instances = json.loads((trained["folder"] / "test_payload.json").read_text())["instances"]
    assert len(instances) == 3 and all(spec.hooks.validate_instance(i) is None for i in instances)
    assert spec.hooks.validate_instance([0] * 63) == "has 63 values, the model takes 64"


def test_the_trainer_reports_each_epoch_and_writes_a_saved_model_and_metrics(trained):
    assert "epoch 3/3 loss=" in trained["stdout"]
    assert (trained["out"] / "model" / "saved_model.pb").is_file()
    metrics = json.loads((trained["out"] / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["epochs"]] == [1, 2, 3]
    assert {"accuracy", "loss", "confusion_matrix", "train_rows", "test_rows"} <= set(metrics)


def test_the_twin_serves_the_saved_model_as_vertex_serves_it(trained, tmp_path):
    process, port = start_model_server(trained["out"] / "model", tmp_path / "server.log", framework="tensorflow")
    try:
        payload = json.loads((trained["folder"] / "test_payload.json").read_text())
        answer = requests.post(f"http://127.0.0.1:{port}/predict", json=payload, timeout=30).json()
        assert len(answer["predictions"]) == 3
        for prediction in answer["predictions"]:
            assert prediction["class_id"] in (0, 1, 2) and abs(sum(prediction["probabilities"]) - 1) < 1e-4
        bad = requests.post(f"http://127.0.0.1:{port}/predict", json={"instances": [[0] * 63]}, timeout=30)
        assert bad.status_code == 400 and "expected shape [64]" in bad.json()["error"]
    finally:
        stop_model_server(process)


def test_the_hooks_give_the_evaluation_its_held_out_images_and_perturbations(trained):
    import numpy as np

    project = trained["project"]
    hooks = load_spec(project, edge_config.load(project).models[NAME]).hooks
    x, y = hooks.heldout(project)
    assert x.shape == (12, 64) and x.dtype == np.float32 and set(y.tolist()) == {0, 1, 2}
    perturbed = hooks.perturbations(x, np.random.default_rng(0))
    assert set(perturbed) == {"shift_1px", "brighter_10pct", "darker_10pct"}
    assert all(v.shape == x.shape for v in perturbed.values())
    features = hooks.features(x[:2].tolist(), [{"class_id": 1, "probabilities": [0.2, 0.7, 0.1]}] * 2)
    assert features["predicted_class"] == ["1 rows", "1 rows"] and set(features) == set(hooks.FEATURES)


def test_its_params_are_checked_before_training(trained):
    project: Path = trained["project"]
    hooks = load_spec(project, edge_config.load(project).models[NAME]).hooks
    train = yaml.safe_load((trained["folder"] / "params.yaml").read_text())["train"]
    assert hooks.validate_params(train) is None
    assert (
        hooks.validate_params({**train, "filters": []})
        == "train.filters must be a list of 1 to 3 integers >= 1, got []"
    )
