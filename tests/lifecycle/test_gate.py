"""Testing the model, as a user does it through `invoke` in a fresh repository on its own twin: `invoke train` evaluates
each version (the DVC stage `evaluate`) and imports the evaluation into the registry; `invoke evaluate` prints it,
compares two versions and draws its page; `invoke deploy` goes through the gate (refuses a worse version with the
endpoint untouched, accepts a better or equal one, `--force --reason` recorded); a version without an evaluation is
evaluated by `invoke evaluate --version V`. Two trainings: a fast model (v1) and a clearly worse one (v2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.evaluation.registry import latest_evaluation, slices_of
from edge.project import open_project
from edge.twin import process
from tests.support import (
    DRAWN_PLOTS,
    FAST_EVALUATE,
    FAST_TRAIN,
    commit,
    copy_project,
    invoke,
    keep_screenshot,
    set_evaluate_params,
    set_gate,
    set_train_params,
)

pytestmark = pytest.mark.timeout(900)
GATE = {"metric": "accuracy", "minimum": 0.4, "max_drop": 0.02}


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A user's repository trained once with fast params (version 1, about 0.73 accuracy); the behavioural tests
    check no minimum recall (so that the worse version is refused by the accuracy rule, not by a collapsed class)."""
    repo = copy_project(tmp_path_factory.mktemp("gate-repo"))
    set_train_params(repo, **FAST_TRAIN)
    set_evaluate_params(repo, **{**FAST_EVALUATE, "min_class_recall": 0.0})
    set_gate(repo, **GATE)
    commit(repo, "fast params, the gate for tests")
    for step in ("init", "data.seed", "train"):
        ok(invoke(repo, step))
    yield repo
    process.down(repo / ".edge" / "twin")


@pytest.fixture(scope="module")
def project(repo):
    return open_project(repo)


def version_name(project, version: str) -> str:
    return f"{project.state.read().model('fashion').registry}@{version}"


def test_train_evaluates_the_version_into_the_registry_with_a_slice_per_class(repo, project):
    record = latest_evaluation(project, version_name(project, "1"))
    assert record["metrics_schema_uri"].endswith("/modelevaluation/classification_metrics_1.0.0.yaml")
    assert set(record["metrics"]) >= {"auPrc", "auRoc", "logLoss", "confidenceMetrics", "confusionMatrix"}
    metadata = record["metadata"]
    assert metadata["version"] == "1" and metadata["behaviour"]["passed"] is True
    assert metadata["lineage"]["labels"]["run"] == "1" and metadata["lineage"]["params_hash"]
    trained = json.loads((repo / "models/fashion/outputs/metrics.json").read_text())
    assert metadata["summary"]["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-4)  # the job's own figure
    labels = yaml.safe_load((repo / "models/fashion/model.yaml").read_text())["labels"]
    slices = slices_of(project, record["name"])
    assert [(s["dimension"], s["value"]) for s in slices] == [("annotationSpec", label) for label in labels]


def test_dvc_metrics_and_plots_show_the_evaluation(repo):
    def dvc(*args: str) -> dict:
        shown = subprocess.run(
            [sys.executable, "-m", "dvc", *args, "--json"],
            cwd=repo,
            capture_output=True,
            text=True,
            env={**os.environ, "EDGE_HOME": str(repo / ".edge")},
        )
        return json.loads(shown.stdout)

    metrics = dvc("metrics", "show")
    found = json.dumps(metrics)
    assert all(key in found for key in ("log_loss", "auprc_micro", "ece", "invariance: shift_2px", "Ankle boot"))
    plots = dvc("plots", "show")["data"]
    confusion = next(v for k, v in plots.items() if k.endswith("confusion.csv"))[0]["content"]
    assert '"rect"' in json.dumps(confusion) and len(confusion["data"]["values"]) == 10000
    assert "Recall per class (held-out test split)" in plots and "F1 per class (held-out test split)" in plots


def test_invoke_evaluate_prints_the_summary_the_classes_the_confusion_grid_and_the_behavioural_tests(repo):
    out = ok(invoke(repo, "evaluate"))
    first = out.splitlines()[0]
    assert first.startswith("fashion version 1: accuracy 0.") and "behavioural tests passed (14/14)" in first
    assert "auPRC (micro, one-vs-rest)" in out and "expected calibration error (15 bins)" in out
    assert "confusion matrix (rows: actual class; columns: predicted class id)" in out
    assert "9 Ankle boot" in out and "invariance: shift_1px" in out and "recall: Shirt" in out


def test_invoke_evaluate_json_is_one_document(repo):
    shown = json.loads(ok(invoke(repo, "evaluate", "--json")))
    assert shown["version"] == "1" and shown["evaluated_now"] is False
    assert len(shown["confusion"]) == 10 and sum(map(sum, shown["confusion"])) == shown["instances"] == 10000


def test_the_report_draws_every_plot_offline_and_goes_to_the_bucket(repo, project, browser, tmp_path):
    written = json.loads(ok(invoke(repo, "evaluate", "--report", "--json")))["report"]
    assert written["remote"].startswith(f"gs://{project.config.bucket}/reports/evaluations/fashion/v1-")
    assert project.bucket.get_blob(written["remote"].split("/", 3)[3]) is not None
    context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(Path(written["local"]).as_uri())
    page.wait_for_function(f"{DRAWN_PLOTS}.length == {written['figures']}", timeout=60_000)
    assert written["figures"] == 4  # confusion heatmap, per-class bars, reliability diagram, behavioural tests
    assert page.locator(".heatmaplayer .hm").count() == 1 and page.locator(".barlayer .trace").count() == 4
    assert errors == [] and page.title() == "fashion version 1: evaluation"
    keep_screenshot(page, tmp_path, "evaluation-report.png")
    context.close()


def test_the_first_deploy_passes_the_gate_on_the_floor(repo):
    out = ok(invoke(repo, "deploy"))
    assert "gate passed: accuracy 0." in out and "(floor 0.4; no other version serves)" in out


@pytest.fixture(scope="module")
def worse(repo):
    """Version 2: the same model trained on 500 rows (about 0.5 accuracy)."""
    set_train_params(repo, train_limit=500)
    commit(repo, "a worse model")
    ok(invoke(repo, "train"))
    return "2"


def deployed(project) -> list[tuple[str, int]]:
    return [(d.version, d.traffic) for d in project.state.read().model("fashion").deployed]


def test_a_worse_version_is_refused_in_one_line_and_the_endpoint_is_untouched(repo, project, worse):
    before_state, before_endpoint = project.state.read(), deployed_on_endpoint(project)
    line = one_line_error(invoke(repo, "deploy"))
    assert line.startswith("edge: deploy refused: fashion version 2 accuracy 0.")
    assert "below serving version 1's 0." in line and "more than the 0.0200 allowed" in line
    assert "(edge.yaml models.fashion.gate.max_drop); `invoke deploy --force --reason TEXT` deploys anyway" in line
    assert project.state.read() == before_state and deployed_on_endpoint(project) == before_endpoint


def deployed_on_endpoint(project) -> list[tuple[str, int]]:
    endpoint = project.vertex().Endpoint(project.state.read().model("fashion").endpoint)
    return sorted((d.model_version_id, endpoint.traffic_split.get(d.id, 0)) for d in endpoint.list_models())


def test_a_canary_of_a_worse_version_is_refused_too(repo, project, worse):
    assert "deploy refused: fashion version 2" in one_line_error(invoke(repo, "deploy", "--traffic", "10"))
    assert deployed(project) == [("1", 100)]


def test_the_floor_refuses_in_one_line(repo, worse):
    set_gate(repo, **{**GATE, "minimum": 0.6})
    try:
        line = one_line_error(invoke(repo, "deploy", "--version", "2"))
    finally:
        set_gate(repo, **GATE)
    assert "is below the floor 0.6000 (edge.yaml models.fashion.gate.minimum)" in line


def test_force_without_a_reason_is_one_line(repo, worse):
    assert "--force needs --reason" in one_line_error(invoke(repo, "deploy", "--force"))


def test_a_forced_deploy_is_recorded_in_the_history_and_on_the_version(repo, project, worse):
    reason = "Known regression: testing the override"
    out = ok(invoke(repo, "deploy", "--force", "--reason", reason))
    assert "forced past the gate: fashion version 2 accuracy" in out
    assert deployed(project) == [("2", 100)]
    record = project.state.read().model("fashion").deploys[-1]
    assert (record.version, record.forced, record.reason) == ("2", True, reason)
    assert f", forced: {reason}" in ok(invoke(repo, "status"))
    labels = project.vertex().Model(version_name(project, "2")).labels
    assert labels["edge_forced"] == "true" and labels["edge_forced_reason"] == "known-regression-testing-the-override"
    assert labels["edge_forced_by"] and labels["edge_forced_at"].endswith("z") and labels["run"] == "2"


def test_compare_marks_the_differences(repo, worse):
    out = ok(invoke(repo, "evaluate", "--compare", "1,2"))
    accuracy = next(line for line in out.splitlines() if line.startswith("accuracy "))
    assert accuracy.split()[-1] == "worse" and "held-out data" in out


def test_a_better_version_than_the_serving_one_passes(repo, project, worse):
    out = ok(invoke(repo, "deploy", "--version", "1"))
    assert "gate passed" in out and "serving version 2" in out
    assert deployed(project) == [("1", 100)]


def test_a_version_without_evaluation_is_refused_until_invoke_evaluate_evaluates_it(repo, project, worse):
    vertex = project.vertex()
    first = vertex.Model(version_name(project, "1"))
    by_hand = vertex.Model.upload(
        display_name="fashion",
        artifact_uri=first.uri,
        serving_container_image_uri=first.container_spec.image_uri,
        parent_model=project.state.read().model("fashion").registry,
        is_default_version=False,
    )
    assert by_hand.version_id == "3"
    line = one_line_error(invoke(repo, "deploy", "--version", "3"))
    assert "fashion version 3 has no evaluation: run `invoke evaluate --version 3`" in line
    out = ok(invoke(repo, "evaluate", "--version", "3"))
    assert "evaluating fashion version 3 on 10000 test instances" in out
    assert "fashion version 3 had no evaluation: evaluated now and imported into the registry" in out
    equal = ok(invoke(repo, "deploy", "--version", "3"))  # the same artifact as version 1: equal passes
    assert "gate passed" in equal and deployed(project) == [("3", 100)]


def test_rollback_returns_without_the_gate(repo, project, worse):
    assert "rolled back to version 1" in ok(invoke(repo, "rollback"))
    assert deployed(project) == [("1", 100)]


@pytest.mark.parametrize(
    "gate, words",
    [
        ({"metric": "accuracy", "minimum": "high"}, "gate.minimum must be a number between 0 and 1, got 'high'"),
        ({"metric": "speed"}, "gate.metric must be one of accuracy"),
    ],
)
def test_a_malformed_gate_in_edge_yaml_is_one_line(tmp_path, gate, words):
    fresh = copy_project(tmp_path)
    set_gate(fresh, **gate)
    assert words in one_line_error(invoke(fresh, "deploy"))
