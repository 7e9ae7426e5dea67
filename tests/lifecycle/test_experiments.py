"""Two clones of one project on one twin, through `invoke`: Alice trains (a clean run, then one with an
uncommitted learning rate) and deploys; Bob, in his own clone, lists her runs, compares them and draws the
report; his own old runs in .edge/experiments/ join the bucket's once."""

from __future__ import annotations

import json
import subprocess

import pytest

from edge.experiments.provenance import who
from edge.twin import process
from tests.support import FAST_TRAIN, commit, copy_project, invoke, set_train_params, use_fast_params

pytestmark = pytest.mark.timeout(1200)
PARAMS = "models/fashion/params.yaml"


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    """Alice's clone with its twin: run 1 from a committed tree, run 2 with learning_rate 0.004 not committed;
    version 1 serves. The twin stops at the end."""
    repo = copy_project(tmp_path_factory.mktemp("alice"))
    use_fast_params(repo)
    commit(repo, "fast params for tests")
    ok(invoke(repo, "init"))
    ok(invoke(repo, "data.seed"))
    commit(repo, "data versioned with DVC")
    ok(invoke(repo, "train"))
    set_train_params(repo, learning_rate=0.004)
    ok(invoke(repo, "train"))
    ok(invoke(repo, "deploy", "--version", "1"))
    yield repo
    process.down(repo / ".edge" / "twin")


@pytest.fixture(scope="module")
def bob(alice, tmp_path_factory):
    """Bob's clone of the same project: his own working tree and .edge/, the same twin (hence bucket) as Alice."""
    repo = copy_project(tmp_path_factory.mktemp("bob"))
    (repo / ".edge").mkdir()
    (repo / ".edge" / "twin").symlink_to(alice / ".edge" / "twin")
    return repo


def rows(table: str) -> dict[str, str]:
    """Run id -> its line in the experiments table."""
    return {line.split()[0]: line for line in table.splitlines() if line.split() and line.split()[0].isdigit()}


def test_a_teammate_lists_the_runs_of_the_other_clone(bob):
    lines = rows(ok(invoke(bob, "experiments")))
    assert set(lines) == {"1", "2"}
    assert who() in lines["1"] and who() in lines["2"]
    assert "-dirty" in lines["2"] and "-dirty" not in lines["1"]
    assert lines["1"].rstrip().endswith("yes")  # version 1 is deployed
    assert not (bob / ".edge" / "experiments").exists()


def test_a_teammate_compares_the_two_runs(bob):
    table = ok(invoke(bob, "experiments", "--compare", "1,2"))
    lines = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:] if line.strip()}
    assert lines["params.learning_rate"] == ["0.002", "0.004"]
    assert lines["lineage.git_dirty"] == ["False", "True"]
    assert lines["model_version"] == ["1", "2"]


def test_the_dirty_run_records_the_changed_params_file_and_its_diff(bob):
    runs = json.loads(ok(invoke(bob, "experiments", "--json")))
    clean, dirty = runs
    assert clean["dirty"] is False and "git_diff" not in clean["info"]
    assert dirty["dirty"] is True and dirty["info"]["git_commit"] == clean["info"]["git_commit"]
    assert dirty["info"]["git_changed_files"][0] == PARAMS
    assert "-  learning_rate: 0.002" in dirty["info"]["git_diff"]
    assert "+  learning_rate: 0.004" in dirty["info"]["git_diff"]


def test_the_report_is_written_locally_and_to_the_bucket(bob, alice):
    out = ok(invoke(bob, "experiments.report", "--runs", "1,2"))
    lines = out.strip().splitlines()
    assert lines[0] == "report of runs 1, 2 (4 plots):"
    local, remote = lines[1].strip(), lines[2].strip()
    assert local.startswith(str(bob / ".edge" / "reports" / "experiments" / "fashion-")) and local.endswith(".html")
    assert "plotly" in open(local).read(200_000)
    assert remote.startswith("gs://") and "/reports/experiments/fashion/" in remote
    listed = json.loads(ok(invoke(alice, "experiments.report", "--json")))
    assert listed["runs"] == [1, 2] and listed["remote"].startswith("gs://")


def test_status_and_endpoint_json_hold_what_their_tables_show(bob):
    status = json.loads(ok(invoke(bob, "status", "--json")))
    fashion = status["models"]["fashion"]
    assert status["target"] == "twin" and status["bucket"].startswith("gs://") and status["lock"] is None
    assert fashion["runs"] == 2 and fashion["versions"] == ["1", "2"]
    assert [(d["version"], d["traffic"]) for d in fashion["deployed"]] == [("1", 100)]
    text = ok(invoke(bob, "status"))
    assert "2 runs, versions 1, 2" in text and "deployed version 1" in text
    endpoint = json.loads(ok(invoke(bob, "endpoint", "--json")))
    assert [(d["version"], d["traffic"]) for d in endpoint["deployed"]] == [("1", 100)]
    assert endpoint["url"].endswith(f"{endpoint['name']}:predict")
    assert f"endpoint {endpoint['name']}" in ok(invoke(bob, "endpoint"))


def record_in_the_old_file_store(folder) -> None:
    """A run recorded the way edge did before runs lived in the bucket: Sacred's FileStorageObserver."""
    from sacred import Experiment
    from sacred.observers import FileStorageObserver

    experiment = Experiment("fashion", save_git_info=False, interactive=True)
    experiment.add_config({**FAST_TRAIN, "learning_rate": 0.01})
    experiment.observers.append(FileStorageObserver(str(folder)))

    @experiment.main
    def main(_run):
        _run.info.update({"git_commit": "0" * 40, "git_dirty": False, "data": "0" * 32})
        _run.log_scalar("val_accuracy", 0.7, 1)
        return {"accuracy": 0.7, "loss": 0.9, "run": _run._id}

    experiment.run()


def test_a_clones_old_local_runs_are_uploaded_once(bob, alice):
    old_store = bob / ".edge" / "experiments" / "fashion"
    record_in_the_old_file_store(old_store)
    first = ok(invoke(bob, "experiments"))
    assert "uploaded 1 runs of fashion from .edge/experiments/ to the bucket: 1 as 3" in first
    assert set(rows(first)) == {"1", "2", "3"}
    record_in_the_old_file_store(old_store)  # local run 2, uploaded by a --json call: its output stays JSON
    assert [run["id"] for run in json.loads(ok(invoke(bob, "experiments", "--json")))] == [1, 2, 3, 4]
    again = ok(invoke(bob, "experiments"))
    assert "uploaded" not in again and set(rows(again)) == {"1", "2", "3", "4"}
    assert set(rows(ok(invoke(alice, "experiments")))) == {"1", "2", "3", "4"}
