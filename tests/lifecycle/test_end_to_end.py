"""init -> data.seed -> train -> deploy -> predict on the twin, through `invoke`, in a fresh user repository."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from edge.project import open_project
from tests.support import commit, invoke, set_train_params

pytestmark = pytest.mark.timeout(900)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def project(user_repo):
    ok(invoke(user_repo, "init"))
    return open_project(user_repo)


@pytest.fixture(scope="module")
def trained(user_repo, project):
    ok(invoke(user_repo, "data.seed"))
    ok(invoke(user_repo, "train"))
    return json.loads((user_repo / "models/fashion/outputs/model.json").read_text())


def registry_versions(project) -> list[str]:
    vertex = project.vertex()
    name = project.state.read().models["fashion"].registry
    return [m.version_id for m in vertex.models.ModelRegistry(name).list_versions()]


def test_init_makes_the_bucket_the_state_and_a_dvc_remote_outside_git(user_repo, project):
    assert project.target.storage_client().lookup_bucket(project.config.bucket) is not None
    assert project.state.read().models == {}
    assert f"url = gs://{project.config.bucket}/dvc" in (user_repo / ".dvc/config").read_text()
    assert "endpointurl = http://127.0.0.1:" in (user_repo / ".dvc/config.local").read_text()
    assert subprocess.run(["git", "check-ignore", "-q", ".dvc/config.local"], cwd=user_repo).returncode == 0
    again = invoke(user_repo, "init")
    assert again.returncode == 0, again.stderr


def test_seed_versions_fashion_mnist_with_dvc_and_pushes_it(user_repo, project, trained):
    assert (user_repo / "data/fashion-mnist.dvc").exists()
    assert subprocess.run(["git", "check-ignore", "-q", "data/fashion-mnist"], cwd=user_repo).returncode == 0
    pushed = [b.name for b in project.bucket.list_blobs(prefix="dvc/files/md5/")]
    assert len(pushed) >= 5  # four files and the directory listing


def test_train_registers_a_version_with_lineage_labels(project, trained):
    vertex = project.vertex()
    model = vertex.Model(f"{trained['model']}@{trained['version']}")
    assert set(model.labels) >= {"git_commit", "data", "params", "run", "edge_model"}
    assert model.labels["data"] == trained["data"][:12]
    assert model.labels["run"] == str(trained["run"])
    assert model.uri.startswith(f"gs://{project.config.bucket}/runs/fashion/")


def test_train_records_a_sacred_run_with_per_epoch_metrics(project, trained):
    def load(name: str) -> dict:  # the run lives in the bucket (edge/experiments), not in .edge/
        return json.loads(project.bucket.blob(f"experiments/fashion/{trained['run']}/{name}").download_as_bytes())

    assert load("run.json")["status"] == "COMPLETED"
    assert load("config.json")["epochs"] == 1
    info = load("info.json")
    assert info["job"].startswith("projects/") and info["data"] == trained["data"]
    assert load("metrics.json")["val_accuracy"]["steps"] == [1]


def test_dvc_metrics_show_reads_the_train_stage_metrics(user_repo, trained):
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "show", "--json"], cwd=user_repo, capture_output=True, text=True
    )
    assert "accuracy" in shown.stdout, shown.stderr


def test_experiments_lists_the_run(user_repo, trained):
    table = ok(invoke(user_repo, "experiments"))
    assert str(trained["run"]) in table and trained["data"][:8] in table


def test_train_with_nothing_changed_submits_nothing(user_repo, project, trained):
    jobs_before = len(project.vertex().CustomJob.list())
    out = ok(invoke(user_repo, "train"))
    assert "nothing to train" in out
    assert len(project.vertex().CustomJob.list()) == jobs_before


def test_deploy_then_predict_prints_class_names(user_repo, trained):
    out = ok(invoke(user_repo, "deploy"))
    assert "smoke test predicted" in out
    predicted = ok(invoke(user_repo, "predict"))
    assert "Ankle boot" in predicted or "predictions: [" in predicted
    assert predicted.strip().splitlines()[-1].startswith("predictions: [")
    endpoint = ok(invoke(user_repo, "endpoint"))
    assert re.search(rf"^\d+ +{trained['version']} +100%$", endpoint, re.MULTILINE), endpoint


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: "), result.stderr
    return lines[0]


def test_an_unknown_version_is_one_line_and_changes_nothing(user_repo, project, trained):
    before = project.state.read()
    assert "has no version '99' in the registry (versions: 1)" in one_line_error(
        invoke(user_repo, "deploy", "--version", "99")
    )
    assert project.state.read() == before


@pytest.mark.parametrize(
    "payload, words",
    [
        ('{"instances": [[1, 2, 3]]}', "instance 0: has 3 values (expected 784 pixel values"),
        ('{"instances": "nope"}', "must be"),
        ("not json", "not valid JSON"),
    ],
)
def test_a_bad_payload_is_one_line(user_repo, trained, tmp_path, payload, words):
    path = tmp_path / "payload.json"
    path.write_text(payload)
    assert words in one_line_error(invoke(user_repo, "predict", "--payload", str(path)))


def test_a_second_deploy_moves_traffic_without_a_failed_request(user_repo, project, trained):
    set_train_params(user_repo, seed=7)
    commit(user_repo, "another seed")
    ok(invoke(user_repo, "train"))
    url = project.target.predict_url(project.state.read().models["fashion"].endpoint)
    payload = (user_repo / "models/fashion/test_payload.json").read_bytes()
    answers, failures, stop = [], [], threading.Event()

    def client():
        session = requests.Session()
        while not stop.is_set():
            response = session.post(url, data=payload, headers={"Content-Type": "application/json"}, timeout=60)
            (answers if response.status_code == 200 else failures).append(response)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        out = ok(invoke(user_repo, "deploy"))
    finally:
        time.sleep(0.5)
        stop.set()
        thread.join()
    assert not failures, [f.text for f in failures[:3]]
    versions = [r.json()["modelVersionId"] for r in answers]
    assert "2" in versions and versions[-1] == "2", out
    assert versions.index("2") > 0, "the old version served until the new one took over"
    deployed = project.state.read().models["fashion"].deployed
    assert [(d.version, d.traffic) for d in deployed] == [("2", 100)]


def test_rollback_returns_to_the_previous_version(user_repo, project):
    out = ok(invoke(user_repo, "rollback"))
    assert "rolled back to version 1" in out
    deployed = project.state.read().models["fashion"].deployed
    assert [(d.version, d.traffic) for d in deployed] == [("1", 100)]


def test_two_concurrent_deploys_leave_a_consistent_state(user_repo, project):
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "invoke", "deploy", "--version", "2"],
            cwd=user_repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(r.wait(timeout=600), *r.communicate()) for r in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes[0] == 0
    if codes[1] != 0:  # the loser said why in one line
        loser = next(err for code, _, err in results if code != 0)
        assert "holds the lock" in loser and len(loser.strip().splitlines()) == 1, loser
    deployed = project.state.read().models["fashion"].deployed
    assert [(d.version, d.traffic) for d in deployed] == [("2", 100)]
    assert project.state.current_lock() is None


def deployed_versions(project) -> dict[str, int]:
    return {d.version: d.traffic for d in project.state.read().models["fashion"].deployed}


def test_a_canary_keeps_the_old_version_until_a_full_deploy(user_repo, project):
    ok(invoke(user_repo, "deploy", "--version", "1", "--traffic", "20"))
    assert deployed_versions(project) == {"1": 20, "2": 80}
    ok(invoke(user_repo, "deploy", "--version", "2"))
    assert deployed_versions(project) == {"2": 100}


def test_ctrl_c_during_train_leaves_no_lock_and_no_new_version(user_repo, project):
    set_train_params(user_repo, seed=11, epochs=3)
    commit(user_repo, "a run to interrupt")
    before = registry_versions(project)
    vertex = project.vertex()
    train = subprocess.Popen(
        [sys.executable, "-m", "invoke", "train"],
        cwd=user_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not any(j.state.name == "JOB_STATE_RUNNING" for j in vertex.CustomJob.list()):
        assert train.poll() is None and time.monotonic() < deadline, "the training job never started running"
        time.sleep(0.2)
    os.killpg(train.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    output, _ = train.communicate(timeout=120)
    assert train.returncode != 0, output
    assert project.state.current_lock() is None
    assert registry_versions(project) == before
    deadline = time.monotonic() + 60
    while any(j.state.name in ("JOB_STATE_RUNNING", "JOB_STATE_CANCELLING") for j in vertex.CustomJob.list()):
        assert time.monotonic() < deadline, "the interrupted job was not cancelled"
        time.sleep(0.2)
    assert "JOB_STATE_CANCELLED" in {j.state.name for j in vertex.CustomJob.list()}


def test_a_lock_left_by_a_dead_command_blocks_until_force_unlock(user_repo, project):
    project.state.bucket.blob("edge/lock.json").upload_from_string(
        json.dumps({"owner": "ghost@elsewhere", "pid": 1, "command": "deploy fashion", "created": time.time()})
    )
    refused = invoke(user_repo, "deploy")
    assert refused.returncode == 1
    assert "ghost@elsewhere (deploy fashion)" in refused.stderr
    assert "ghost@elsewhere" in ok(invoke(user_repo, "status"))
    assert "removed the lock held by ghost@elsewhere" in ok(invoke(user_repo, "force-unlock", "--yes"))
    assert project.state.current_lock() is None


def test_status_shows_data_versions_deployment_and_a_free_lock(user_repo, project):
    out = ok(invoke(user_repo, "status"))
    assert "target   twin" in out and f"gs://{project.config.bucket}" in out
    assert "versions 1, 2" in out and "deployed version 2" in out and "lock     free" in out


def test_destroy_removes_endpoints_models_and_bucket_contents(user_repo, project):
    state = project.state.read().models["fashion"]
    out = ok(invoke(user_repo, "destroy", "--yes"))
    assert "deleted endpoint" in out and "deleted model" in out
    vertex = project.vertex()
    assert vertex.Endpoint.list() == []
    assert vertex.Model.list(filter='display_name="fashion"') == []
    assert list(project.bucket.list_blobs()) == []
    assert state.registry not in [m.resource_name for m in vertex.Model.list()]
