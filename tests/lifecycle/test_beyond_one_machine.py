"""`invoke train --replicas 2`, `invoke tune --register-best` and `invoke predict --batch` on the twin, through
`invoke`, in a fresh user repository with fast params (one epoch on a few thousand rows)."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import yaml

from edge.twin import process
from tests.support import commit, copy_project, fashion_labels, invoke, use_fast_params

pytestmark = pytest.mark.timeout(900)

TUNE = {  # two quick trials at once: the twin runs at most two jobs
    "metric": "val_accuracy",
    "goal": "MAXIMIZE",
    "max_trials": 2,
    "parallel_trials": 2,
    "algorithm": "RANDOM_SEARCH",
    "measurement": "LAST_MEASUREMENT",
    "parameters": {
        "learning_rate": {"type": "DOUBLE", "min": 0.001, "max": 0.004, "scale": "LOG"},
        "dense": {"type": "DISCRETE", "values": [32, 64]},
    },
}


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A user's repository, seeded; its twin is stopped at the end."""
    repo = copy_project(tmp_path_factory.mktemp("beyond"))
    use_fast_params(repo)
    params = repo / "models/fashion/params.yaml"
    values = yaml.safe_load(params.read_text())
    values["tune"] = TUNE
    params.write_text(yaml.safe_dump(values, sort_keys=False))
    commit(repo, "fast params and a small tuning job")
    ok(invoke(repo, "init"))
    ok(invoke(repo, "data.seed"))
    yield repo
    process.down(repo / ".edge" / "twin")


@pytest.fixture(scope="module")
def trained(repo):
    return ok(invoke(repo, "train", "--replicas", "2"))


def test_train_with_two_replicas_streams_both_and_registers_the_chiefs_model(repo, trained):
    assert "[workerpool0-0] replica: chief 0 of a cluster of 2" in trained
    assert "[workerpool1-0] model: saved to a temporary directory and deleted" in trained
    assert "[workerpool0-0] model: saved to gs://" in trained
    assert "cpu_feature_guard" not in trained  # TensorFlow's start-up INFO lines stay out
    record = json.loads((repo / "models/fashion/outputs/model.json").read_text())
    assert record["replicas"] == 2 and record["version"] == "1"
    assert json.loads((repo / "models/fashion/outputs/metrics.json").read_text())["accuracy"] > 0.6
    again = ok(invoke(repo, "train", "--replicas", "2"))
    assert "nothing to train" in again  # how many machines train is no input of the pipeline


@pytest.fixture(scope="module")
def tuned(repo, trained):
    return ok(invoke(repo, "tune", "--register-best"))


def test_tune_runs_the_trials_records_each_and_registers_the_best(repo, tuned):
    out = tuned
    assert re.search(r"^trial +state +learning_rate +dense +val_accuracy +run", out, re.MULTILINE), out
    assert len(re.findall(r"^\d +succeeded ", out, re.MULTILINE)) == 2
    assert "best: trial" in out and "registered as version 2" in out
    runs = json.loads(ok(invoke(repo, "experiments", "--json")))
    trials = [r for r in runs if r["info"].get("tuning_job")]
    assert sorted(r["info"]["trial"] for r in trials) == ["1", "2"]
    assert all(r["status"] == "COMPLETED" and r["config"]["dense"] in (32, 64) for r in trials)
    assert all(0.001 <= r["config"]["learning_rate"] <= 0.004 for r in trials)
    best = next(line for line in out.splitlines() if line.startswith("best: trial"))
    assert f"run {max(r['id'] for r in trials)}" in best or f"run {min(r['id'] for r in trials)}" in best

    assert re.search(r"^fashion version 2: accuracy 0\.\d+.*behavioural tests passed", out, re.MULTILINE), out


def test_the_best_trials_version_meets_the_deploy_gate_like_any_other(repo, tuned):
    out = ok(invoke(repo, "deploy", "--version", "2"))
    assert "gate passed: accuracy 0." in out and "fashion version 2 deployed to" in out


def test_batch_prediction_of_a_file_counts_classes_and_bad_lines(repo, trained, tmp_path):
    with np.load(repo / "data/prepared/fashion/test.npz") as data:
        images = data["x"][:200].reshape(200, -1)
    lines = [json.dumps(image.tolist()) for image in images] + ["not json", "[1, 2, 3]"]
    source = tmp_path / "instances.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = ok(invoke(repo, "predict", "--batch", str(source), "--version", "1", "--summary"))
    assert "(version 1) succeeded: 200 predicted, 2 failed" in out
    assert "/prediction.results-*" in out and "/prediction.errors_stats-*" in out
    counted = {line.split()[0]: int(line.split()[-2]) for line in out.splitlines() if line[:1].isdigit()}
    assert sum(counted.values()) == 200 and set(counted) <= {str(i) for i in range(len(fashion_labels()))}


def test_a_missing_batch_input_is_one_line(repo, trained):
    result = invoke(repo, "predict", "--batch", "nowhere.jsonl")
    assert result.returncode == 1
    assert result.stderr.strip() == "edge: nowhere.jsonl is not a file (give a JSON Lines file or a gs:// URI)"
    result = invoke(repo, "predict", "--batch", "gs://edge-twin-edge/nowhere/*.jsonl")
    assert (
        result.returncode == 1 and result.stderr.strip() == "edge: gs://edge-twin-edge/nowhere/*.jsonl does not exist"
    )
