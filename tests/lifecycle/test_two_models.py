"""Your own model beside fashion, on one twin: `invoke model.init` an sklearn-tabular model, `data.add` a CSV the
test makes, then train, evaluate, deploy and predict it through `invoke` in the session's user repository, where
fashion is trained and deployed (tests/web/conftest.py). Each model keeps its own pipeline, registry entry,
endpoint and evaluation; commands without --model say which models there are.

The repository gets its edge.yaml back at the end, and the new model's endpoint is emptied: the tests after these
use it with fashion alone."""

from __future__ import annotations

import json
import subprocess

import pytest

from edge.deploy import endpoint_for, predict_instances
from edge.project import open_project
from tests.scaffold.conftest import CLASSES, write_csv
from tests.support import invoke
from tests.web.conftest import deployed_repo  # noqa: F401  (the session's repository, fashion deployed)

pytestmark = pytest.mark.timeout(900)

NAME = "tabular"


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def two_models(deployed_repo, tmp_path_factory):  # noqa: F811
    """The repository with `tabular` scaffolded, its data added, trained and deployed beside fashion."""
    repo = deployed_repo
    config_text = (repo / "edge.yaml").read_text()
    outputs = {}
    try:
        outputs["init"] = ok(invoke(repo, "model.init", NAME, "--template", "sklearn-tabular"))
        csv = write_csv(tmp_path_factory.mktemp("csv") / "data.csv")
        outputs["add"] = ok(invoke(repo, "data.add", str(csv), "--model", NAME))
        outputs["train"] = ok(invoke(repo, "train", "--model", NAME))
        outputs["deploy"] = ok(invoke(repo, "deploy", "--model", NAME))
        yield repo, outputs
    finally:
        project = open_project(repo)
        if NAME in project.config.models:
            endpoint = endpoint_for(project, project.config.models[NAME], create=False)
            if endpoint is not None:
                endpoint.undeploy_all()
        (repo / "edge.yaml").write_text(config_text)


def test_model_init_prints_the_next_commands_and_data_add_versions_the_csv(two_models):
    repo, outputs = two_models
    assert f"invoke data.add data.csv --model {NAME}" in outputs["init"]
    assert (repo / f"data/{NAME}.dvc").exists() and (repo / f"data/{NAME}/data.csv").exists()


def test_the_model_trains_evaluates_and_deploys_through_its_own_pipeline(two_models):
    repo, outputs = two_models
    trained = json.loads((repo / f"models/{NAME}/outputs/model.json").read_text())
    evaluation = json.loads((repo / f"models/{NAME}/outputs/evaluation.json").read_text())
    assert trained["version"] == "1" and evaluation["version"] == "1"
    assert evaluation["accuracy"] > 0.8 and evaluation["behaviour_passed"] is True
    assert set(evaluation["classes"]) == set(CLASSES)
    assert "gate passed" in outputs["deploy"] and f"{NAME} version 1 deployed" in outputs["deploy"]


def test_predict_answers_with_the_class_names_of_its_data(two_models):
    repo, _ = two_models
    shown = ok(invoke(repo, "predict", "--model", NAME))
    assert "version 1 answered:" in shown
    assert sum(name in shown for name in CLASSES) >= 1
    lines = [line for line in shown.splitlines() if line.startswith("  ")]
    assert len(lines) == 3 and all(line.split()[2] in CLASSES for line in lines)


def test_fashion_still_serves_from_its_own_endpoint(two_models):
    repo, _ = two_models
    project = open_project(repo)
    payload = json.loads((repo / "models/fashion/test_payload.json").read_text())["instances"]
    answer = predict_instances(project, project.config.models["fashion"], payload)
    assert [row["class_id"] for row in answer["predictions"]] == [9, 2, 1]
    models = project.state.read().models
    assert models["fashion"].endpoint != models[NAME].endpoint
    assert models["fashion"].registry != models[NAME].registry


def test_a_command_without_model_says_which_models_there_are(two_models):
    repo, _ = two_models
    for command in (["predict"], ["deploy"], ["evaluate"]):
        result = invoke(repo, *command)
        assert result.returncode == 1
        assert result.stderr.strip() == "edge: edge.yaml defines models ['fashion', 'tabular']: pass --model NAME"


def test_status_and_evaluate_show_each_model_on_its_own(two_models):
    repo, _ = two_models
    status = ok(invoke(repo, "status"))
    assert "model    fashion:" in status and f"model    {NAME}: 1 runs, versions 1" in status
    evaluated = ok(invoke(repo, "evaluate", "--model", NAME, "--json"))
    shown = json.loads(evaluated)
    assert shown["labels"] == list(CLASSES) and [row["class"] for row in shown["classes"]] == list(CLASSES)
