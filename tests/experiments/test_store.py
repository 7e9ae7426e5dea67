"""Runs in the bucket: what a run records, ids that never collide, old local runs uploaded once, fast reads."""

from __future__ import annotations

import json
import logging
import threading
import time

from edge import experiments
from edge.experiments import provenance, store
from tests.experiments.conftest import PARAMS
from tests.support import commit


def objects(bucket, prefix: str = "experiments/") -> dict[str, int]:
    return {blob.name: blob.generation for blob in bucket.list_blobs(prefix=prefix)}


def test_a_run_is_written_to_the_bucket_with_params_lineage_who_and_metrics_per_epoch(project, record):
    result = record(learning_rate=0.002, accuracy=0.87)
    names = set(objects(project.bucket))
    folder = f"experiments/fashion/{result['run']}"
    assert {f"{folder}/{n}" for n in ("claim.json", "run.json", "config.json", "info.json", "metrics.json")} <= names
    [run] = experiments.list_runs(project, project.config.model())
    assert run["status"] == "COMPLETED" and run["config"]["learning_rate"] == 0.002
    assert run["who"] == provenance.who() and "@" in run["who"]
    assert run["info"]["git_commit"] == "0123456789abcdef" and run["dirty"] is False
    assert run["metrics"]["val_accuracy"]["steps"] == [1, 2, 3]
    assert run["result"]["accuracy"] == 0.87
    cout = project.bucket.blob(f"{folder}/cout.txt").download_as_text()
    assert "epoch 1/3" in cout and "epoch 3/3" in cout


def test_runs_started_at_the_same_moment_by_two_clones_get_different_ids(project, target):
    ids, barrier = [], threading.Barrier(6)

    def clone(n: int) -> None:
        bucket = target.storage_client().bucket(project.config.bucket)  # a client of its own, as a clone has
        barrier.wait()
        ids.append(store.claim_run_id(bucket, "experiments/fashion", f"user{n}@host"))

    threads = [threading.Thread(target=clone, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == [1, 2, 3, 4, 5, 6]
    claims = [json.loads(project.bucket.blob(f"experiments/fashion/{i}/claim.json").download_as_bytes()) for i in ids]
    assert {c["who"] for c in claims} == {f"user{n}@host" for n in range(6)}


def test_a_claimed_id_without_a_run_is_skipped_and_never_listed(project, record):
    store.claim_run_id(project.bucket, "experiments/fashion", "someone@elsewhere")  # a run that never started
    result = record()
    assert result["run"] == 2
    assert [r["id"] for r in experiments.list_runs(project, project.config.model())] == [2]


def test_a_dirty_tree_records_the_changed_files_params_first_and_their_diff(project, record):
    params = project.root / PARAMS
    params.write_text(params.read_text().replace("learning_rate: 0.001", "learning_rate: 0.005"))
    (project.root / "notes.txt").write_text("untracked files are not part of the diff\n")
    record(dirty=True)
    [run] = experiments.list_runs(project, project.config.model())
    assert run["dirty"] is True
    assert run["info"]["git_changed_files"] == [PARAMS]
    diff = run["info"]["git_diff"]
    assert "-  learning_rate: 0.001" in diff and "+  learning_rate: 0.005" in diff
    assert run["info"]["git_diff_truncated"] is False


def test_a_large_diff_is_cut_and_the_params_file_comes_first(project):
    (project.root / "big.txt").write_text("x\n")
    commit(project.root, "a big file")
    (project.root / "big.txt").write_text("y" * 80 + "\n" * 1 + ("z" * 100 + "\n") * 1000)
    params = project.root / PARAMS
    params.write_text(params.read_text().replace("seed: 42", "seed: 7"))
    changes = provenance.git_changes(project.root, first=[PARAMS])
    assert changes["git_changed_files"] == [PARAMS, "big.txt"]
    assert changes["git_diff"].startswith(f"diff --git a/{PARAMS}")
    assert changes["git_diff_truncated"] is True
    assert len(changes["git_diff"]) < provenance.MAX_DIFF_CHARS + 100


def record_local_runs(project, count: int) -> None:
    """Runs recorded the way edge did before runs lived in the bucket: Sacred's file store in .edge/experiments/."""
    from sacred import Experiment
    from sacred.observers import FileStorageObserver

    for n in range(count):
        experiment = Experiment("fashion", save_git_info=False, interactive=True)
        experiment.add_config({"learning_rate": 0.001 * (n + 1), "epochs": 2, "seed": 42})
        experiment.observers.append(FileStorageObserver(str(project.home / "experiments" / "fashion")))

        @experiment.main
        def main(_run, n=n):
            _run.info.update({"git_commit": "feedface", "git_dirty": False, "data": "d" * 32})
            _run.log_scalar("val_accuracy", 0.8, 1)
            return {"accuracy": 0.8 + n / 100, "loss": 0.5, "model": {"version": str(n + 1)}, "run": _run._id}

        experiment.run()


def test_old_local_runs_are_uploaded_once_under_new_ids(project, record):
    record()  # run 1 in the bucket, from another clone: local run 1 must not take its id
    record_local_runs(project, 2)
    uploaded = experiments.upload_local_runs(project, project.config.model())
    assert uploaded == [(1, 2), (2, 3)]
    runs = experiments.list_runs(project, project.config.model())
    assert [(r["id"], r["config"]["learning_rate"]) for r in runs] == [(1, 0.001), (2, 0.001), (3, 0.002)]
    assert runs[2]["metrics"]["val_accuracy"]["values"] == [0.8] and runs[2]["info"]["git_commit"] == "feedface"
    before = objects(project.bucket)
    assert experiments.upload_local_runs(project, project.config.model()) == []
    assert objects(project.bucket) == before


def test_a_copy_of_the_same_local_runs_is_not_uploaded_twice(project):
    record_local_runs(project, 1)
    assert experiments.upload_local_runs(project, project.config.model()) == [(1, 1)]
    for mark in (project.home / "experiments" / "fashion").glob("*/uploaded.json"):
        mark.unlink()  # another clone with a copy of this .edge/ folder has no marks
    assert experiments.upload_local_runs(project, project.config.model()) == []
    assert [r["id"] for r in experiments.list_runs(project, project.config.model())] == [1]


def test_fifty_runs_are_read_in_under_two_seconds(project, record):
    record()
    template = {n: project.bucket.blob(f"experiments/fashion/1/{n}").download_as_bytes() for n in store.RUN_FILES}
    for run_id in range(2, 51):
        for name, data in template.items():
            project.bucket.blob(f"experiments/fashion/{run_id}/{name}").upload_from_string(data)
    fresh = project.target.storage_client().bucket(project.config.bucket)
    started = time.perf_counter()
    runs = store.read_runs(fresh, "experiments/fashion")
    elapsed = time.perf_counter() - started
    assert len(runs) == 50 and elapsed < 2.0, f"{len(runs)} runs in {elapsed:.2f} s"


def test_a_running_run_whose_heartbeat_stopped_long_ago_is_probably_dead(project):
    old = "2020-01-01T00:00:00"
    for run_id, status in ((1, "RUNNING"), (2, "COMPLETED")):
        run = {"status": status, "start_time": old, "heartbeat": old, "host": {"hostname": "vm"}}
        project.bucket.blob(f"experiments/fashion/{run_id}/run.json").upload_from_string(json.dumps(run))
    runs = experiments.list_runs(project, project.config.model())
    assert [r["status"] for r in runs] == ["PROBABLY_DEAD", "COMPLETED"]


def test_a_bucket_that_fails_during_a_run_never_fails_the_training(project, monkeypatch, caplog):
    from google.cloud.storage import Blob

    from edge.experiments import record

    upload, broken = Blob.upload_from_string, []

    def flaky_upload(blob, *args, **kwargs):
        if broken:
            raise ConnectionError("Connection refused")
        return upload(blob, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_string", flaky_upload)

    def body(run) -> dict:
        broken.append(True)  # the bucket goes away once the run has started
        run.log_scalar("loss", 0.5, 1)
        return {"accuracy": 0.8, "run": run._id}

    lineage = {"git_commit": "0" * 16, "git_dirty": False, "data": "d", "prepared": {}, "params_hash": "p"}
    edge_logger = logging.getLogger("edge")  # edge's logger may not propagate (edge.ui.setup_logging)
    edge_logger.addHandler(caplog.handler)
    try:
        result = record(project, project.config.model(), {"epochs": 1, "seed": 1}, lineage, body)
    finally:
        edge_logger.removeHandler(caplog.handler)
    assert result == {"accuracy": 0.8, "run": 1}
    assert "could not write" in caplog.text and "Connection refused" in caplog.text
    broken.clear()
    assert [r["status"] for r in experiments.list_runs(project, project.config.model())] == ["RUNNING"]
