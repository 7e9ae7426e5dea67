"""The tracker VM's importer (infra/modules/experiment_tracker/importer/import_runs.py): runs written to the
bucket by edge reach MongoDB in Sacred's MongoObserver layout, once, and only the bucket is read.

MongoDB stand-in: `mongomock` (PyPI), used by this test only. No MongoDB server can be installed on this machine
(none is packaged for Debian and the test machines have no network), so this is the accepted exception to driving
real services: the importer runs against the twin's real storage API and an in-memory MongoDB with pymongo's API.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime

import mongomock
import pytest

from tests.experiments.conftest import record_run
from tests.support import ROOT

IMPORTER = ROOT / "infra/modules/experiment_tracker/importer/import_runs.py"


@pytest.fixture(scope="module")
def importer():
    spec = importlib.util.spec_from_file_location("import_runs", IMPORTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def db():
    return mongomock.MongoClient().sacred


def bucket_state(bucket) -> dict[str, int]:
    return {blob.name: blob.generation for blob in bucket.list_blobs()}


def test_new_runs_reach_mongodb_in_sacreds_layout_with_their_metrics(project, importer, db):
    record_run(project, learning_rate=0.001, accuracy=0.81, version="1")
    record_run(project, learning_rate=0.002, accuracy=0.84, version="2", dirty=True)
    assert importer.import_runs(project.bucket, db) == {"imported": 2, "updated": 0, "unchanged": 0}
    runs = list(db.runs.find().sort("_id", 1))
    assert [(r["_id"], r["info"]["edge_run"], r["status"]) for r in runs] == [
        (1, "fashion/1", "COMPLETED"),
        (2, "fashion/2", "COMPLETED"),
    ]
    run = runs[1]
    assert run["format"] == "MongoObserver-0.7.0" and run["experiment"]["name"] == "fashion"
    assert run["config"]["learning_rate"] == 0.002 and run["result"]["model"]["version"] == "2"
    assert isinstance(run["start_time"], datetime) and isinstance(run["stop_time"], datetime)
    assert run["info"]["git_dirty"] is True and "who" in run["info"]
    metrics = {m["name"]: m for m in db.metrics.find({"run_id": 2})}
    assert set(metrics) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert metrics["val_accuracy"]["steps"] == [1, 2, 3] and isinstance(metrics["loss"]["timestamps"][0], datetime)
    assert {m["id"] for m in run["info"]["metrics"]} == {str(m["_id"]) for m in metrics.values()}


def test_a_second_pass_changes_nothing_and_the_bucket_is_only_read(project, importer, db):
    record_run(project)
    before = bucket_state(project.bucket)
    importer.import_runs(project.bucket, db)
    documents = list(db.runs.find()), list(db.metrics.find())
    assert importer.import_runs(project.bucket, db) == {"imported": 0, "updated": 0, "unchanged": 1}
    assert (list(db.runs.find()), list(db.metrics.find())) == documents
    assert bucket_state(project.bucket) == before


def test_a_run_that_changed_since_the_last_pass_is_rewritten_under_its_id(project, importer, db):
    record_run(project)
    blob = project.bucket.blob("experiments/fashion/1/run.json")
    finished = json.loads(blob.download_as_bytes())
    blob.upload_from_string(json.dumps({**finished, "status": "RUNNING"}))  # as a pass during training saw it
    importer.import_runs(project.bucket, db)
    assert db.runs.find_one({"_id": 1})["status"] == "RUNNING"
    blob.upload_from_string(json.dumps(finished))
    record_run(project, learning_rate=0.003)
    assert importer.import_runs(project.bucket, db) == {"imported": 1, "updated": 1, "unchanged": 0}
    assert db.runs.find_one({"_id": 1})["status"] == "COMPLETED"
    assert db.runs.count_documents({}) == 2 and db.metrics.count_documents({"run_id": 1}) == 4


def test_runs_of_two_models_get_distinct_mongo_ids_after_existing_ones(project, importer, db):
    db.runs.insert_one({"_id": 7, "experiment": {"name": "recorded before the importer"}})
    record_run(project)
    other = project.bucket.blob("experiments/fashion/1/run.json").download_as_bytes()
    project.bucket.blob("experiments/digits/1/run.json").upload_from_string(other)
    importer.import_runs(project.bucket, db)
    imported = {r["info"]["edge_run"]: r["_id"] for r in db.runs.find({"edge": {"$exists": True}})}
    assert imported == {"digits/1": 8, "fashion/1": 9}


def test_the_command_line_reads_the_bucket_with_default_credentials(project, importer, tmp_path, monkeypatch, capsys):
    record_run(project)
    client = mongomock.MongoClient()
    monkeypatch.setattr("pymongo.MongoClient", lambda uri, **options: client)
    uri_file = tmp_path / "omniboard-uri"
    uri_file.write_text("mongodb://sacred:secret@mongo:27017/sacred?authSource=sacred\n")
    assert importer.main(["--bucket", project.config.bucket, "--mongo-uri-file", str(uri_file)]) == 0
    assert "1 runs imported, 0 updated, 0 unchanged" in capsys.readouterr().out
    assert client.sacred.runs.count_documents({}) == 1
