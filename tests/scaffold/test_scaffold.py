"""`invoke model.init`: a model's folder written from a template (sklearn-tabular here, keras-image in
test_keras_image.py), its entry added to edge.yaml with every comment kept, names and templates refused in one
line with nothing written, and what the sklearn-tabular template writes working on data the test makes: its
pipeline valid for DVC, its prepare step and trainer run as DVC and Vertex run them, its artifact the file
Vertex's scikit-learn container (and the twin) loads."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

import pytest
import yaml

from edge import config as edge_config
from edge import infra, scaffold
from edge.models import load_spec
from edge.project import Project
from edge.training import TrainingError
from edge.training.inputs import load_params
from tests.scaffold.conftest import CLASSES, run, write_csv
from tests.support import ROOT

NAME = "tabular"
FILES = {
    "dvc.yaml",
    "edge-entry.yaml",
    "hooks.py",
    "model.yaml",
    "params.yaml",
    "prepare.py",
    "trainer/setup.py",
    "trainer/tabular_trainer/__init__.py",
    "trainer/tabular_trainer/params.py",
    "trainer/tabular_trainer/task.py",
    "trainer/tabular_trainer/uris.py",
}


def hooks_of(project: Path, name: str = NAME):
    config = edge_config.load(project)
    return load_spec(project, config.models[name]).hooks


@pytest.fixture
def scaffolded(project) -> Path:
    scaffold.init_model(project, NAME)
    return project


@pytest.fixture
def prepared(scaffolded) -> Path:
    """The model's prepare stage run on a CSV of 300 rows, as DVC runs it (in the model's folder)."""
    write_csv(scaffolded / "data" / NAME / "data.csv")
    folder = scaffolded / "models" / NAME
    command = yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]["prepare"]["cmd"].split()
    result = run([sys.executable, *command[1:]], cwd=folder)
    assert result.returncode == 0, result.stderr
    return scaffolded


def test_the_template_writes_pipeline_params_hooks_trainer_and_model_yaml(project):
    made = scaffold.init_model(project, NAME)
    assert set(made.files) == FILES
    folder = project / "models" / NAME
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == FILES
    assert list(yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]) == ["prepare", "train", "evaluate"]
    assert list(yaml.safe_load((folder / "params.yaml").read_text())) == ["prepare", "train", "evaluate"]
    spec = load_spec(project, edge_config.load(project).models[NAME])
    assert (spec.kind, spec.payload, spec.data, spec.labels) == (
        "classification",
        "test_payload.json",
        "data/tabular",
        (),
    )


def test_the_model_joins_edge_yaml_and_every_line_of_it_stays(project):
    before = (project / "edge.yaml").read_text()
    scaffold.init_model(project, NAME)
    after = (project / "edge.yaml").read_text()
    changes = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "-+"]
    assert changes and all(line.startswith("+ ") for line in changes), "only lines added"
    assert before.count("#") < after.count("#")
    model = edge_config.load(project).models[NAME]
    assert (model.path, model.endpoint, model.training.module) == ("models/tabular", NAME, "tabular_trainer.task")


def test_its_images_are_on_the_list_and_terraform_gets_its_endpoint(scaffolded):
    config = edge_config.load(scaffolded)
    assert not infra.check_container_images(config).errors
    assert infra.tfvars(config)["models"][NAME]["endpoint"] == NAME
    assert "sklearn-cpu.1-6" in config.models[NAME].serving.image


@pytest.mark.parametrize("name", ["fashion", "Tabular", "9lives", "my_model", "-x", "a" * 64, "prepared"])
def test_a_name_that_exists_or_is_no_valid_id_is_refused_and_nothing_is_written(project, name):
    before = (project / "edge.yaml").read_text()
    with pytest.raises(scaffold.ScaffoldError) as refused:
        scaffold.init_model(project, name)
    assert "\n" not in str(refused.value)
    assert (project / "edge.yaml").read_text() == before
    assert not (project / "models").exists()


def test_an_existing_folder_and_an_unknown_template_are_refused(project):
    (project / "models" / NAME).mkdir(parents=True)
    with pytest.raises(scaffold.ScaffoldError, match="models/tabular already exists"):
        scaffold.init_model(project, NAME)
    with pytest.raises(scaffold.ScaffoldError, match="unknown template 'pytorch'.*sklearn-tabular, keras-image"):
        scaffold.init_model(project, "other", "pytorch")


def test_invoke_model_init_writes_the_model_and_prints_the_next_commands(project):
    result = run([sys.executable, "-m", "invoke", "-r", str(ROOT), "model.init", NAME], cwd=project)
    assert result.returncode == 0, result.stderr
    for command in ("data.add data.csv --model tabular", "train --model tabular", "predict --model tabular"):
        assert f"invoke {command}" in result.stdout
    again = run([sys.executable, "-m", "invoke", "-r", str(ROOT), "model.init", NAME], cwd=project)
    assert (
        again.returncode == 1
        and again.stderr.strip() == "edge: edge.yaml already has a model 'tabular' (path models/tabular)"
    )


@pytest.mark.parametrize("template", sorted(scaffold.TEMPLATES))
def test_the_python_it_writes_is_ruff_clean(project, template):
    scaffold.init_model(project, "mine", template)
    folder = project / "models" / "mine"
    config = str(ROOT / "pyproject.toml")
    for check in (["check"], ["format", "--check"]):
        result = run([sys.executable, "-m", "ruff", *check, "--config", config, str(folder)], cwd=project)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("template", sorted(scaffold.TEMPLATES))
def test_dvc_reads_the_pipeline_it_writes(project, template):
    scaffold.init_model(project, "mine", template)
    assert run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=project).returncode == 0
    dag = run([sys.executable, "-m", "dvc", "dag", "models/mine/dvc.yaml"], cwd=project)
    assert dag.returncode == 0, dag.stderr
    assert all(stage in dag.stdout for stage in ("prepare", "train", "evaluate"))
    status = run([sys.executable, "-m", "dvc", "status", "models/mine/dvc.yaml", "--json"], cwd=project)
    assert status.returncode == 0, status.stderr
    assert set(json.loads(status.stdout)) == {
        "models/mine/dvc.yaml:prepare",
        "models/mine/dvc.yaml:train",
        "models/mine/dvc.yaml:evaluate",
    }


def test_prepare_splits_the_csv_and_writes_the_class_names_and_a_payload(prepared):
    folder = prepared / "models" / NAME
    schema = json.loads((folder / "schema.json").read_text())
    assert schema["features"] == ["f1", "f2", "f3", "f4"] and schema["labels"] == list(CLASSES)
    assert sum(schema["rows"].values()) == 300
    assert load_spec(prepared, edge_config.load(prepared).models[NAME]).labels == CLASSES  # model.yaml: schema.json
    instances = json.loads((folder / "test_payload.json").read_text())["instances"]
    hooks = hooks_of(prepared)
    assert len(instances) == 3 and all(hooks.validate_instance(i) is None for i in instances)
    assert hooks.validate_instance([1, 2, 3]) == "has 3 values, the model takes 4 (f1, f2, f3, f4)"
    x, y = hooks.heldout(prepared)
    assert x.shape == (60, 4) and set(y.tolist()) == {0, 1, 2}
    assert [int(y[(x == row).all(axis=1)][0]) for row in instances] == [0, 1, 2], "a test row of each class"


def test_a_csv_without_the_label_column_fails_prepare_in_one_line(scaffolded):
    (scaffolded / "data" / NAME).mkdir(parents=True)
    (scaffolded / "data" / NAME / "data.csv").write_text("a,b\n1,2\n")
    folder = scaffolded / "models" / NAME
    result = run(
        [sys.executable, "prepare.py", "--raw", f"../../data/{NAME}", "--out", "out", "--params", "params.yaml"],
        cwd=folder,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "prepare: no label column 'label' in the CSV (columns: a, b); see params.yaml"


def test_the_trainer_writes_the_model_joblib_the_sklearn_container_loads_and_its_metrics(prepared, tmp_path):
    from edge.twin.vertex.serving.predictor import load_predictor

    folder, data = prepared / "models" / NAME, prepared / "data" / "prepared" / NAME
    train = yaml.safe_load((folder / "params.yaml").read_text())["train"]
    result = run(
        [
            sys.executable,
            "-m",
            "tabular_trainer.task",
            *(f"--{s}={data}/{s}.npz" for s in ("train", "validation", "test")),
        ]
        + [f"--params-json={json.dumps(train)}", "--n_estimators=20"],
        cwd=folder / "trainer",
        env={"AIP_MODEL_DIR": str(tmp_path / "run" / "model") + "/", "PYTHONPATH": str(folder / "trainer")},
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "run" / "model").iterdir()) == ["model.joblib"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.8 and {"loss", "validation_accuracy", "confusion_matrix"} <= set(metrics)
    predictor = load_predictor(tmp_path / "run" / "model", "sklearn")
    instances = json.loads((folder / "test_payload.json").read_text())["instances"]
    import numpy as np

    classes = predictor.run({"features": np.asarray(instances)})["predictions"]
    assert classes.shape == (3,) and set(classes.tolist()) <= {0, 1, 2}


def test_a_broken_train_section_fails_in_one_line_through_the_models_hook(scaffolded):
    params = scaffolded / "models" / NAME / "params.yaml"
    params.write_text(params.read_text().replace("estimator: random_forest", "estimator: svm"))
    config = edge_config.load(scaffolded)
    with pytest.raises(TrainingError) as refused:
        load_params(Project(config, None, scaffolded), config.models[NAME])
    assert str(refused.value) == (
        "models/tabular/params.yaml: train.estimator must be one of random_forest, logistic_regression, got 'svm'"
    )
