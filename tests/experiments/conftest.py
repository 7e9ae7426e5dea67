"""A project on the session's twin with a bucket of its own, and Sacred runs recorded in it the way
`invoke train` records them (edge.experiments.record), with a stand-in for the training job."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import replace

import pytest

from edge import config as config_module
from edge import experiments
from edge.project import Project
from tests.support import ROOT, commit

PARAMS = "models/fashion/params.yaml"


@pytest.fixture
def project(target, tmp_path, monkeypatch) -> Project:
    """A git repository with the fashion params, on the session's twin, with a new empty bucket."""
    monkeypatch.delenv("EDGE_HOME", raising=False)  # .edge/ of the test's repository
    root = tmp_path / "repo"
    (root / "models/fashion").mkdir(parents=True)
    (root / PARAMS).write_text((ROOT / PARAMS).read_text())
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    commit(root, "params")
    bucket = target.storage_client().create_bucket(f"edge-exp-{uuid.uuid4().hex[:10]}")
    config = replace(config_module.load(ROOT), bucket=bucket.name, root=root)
    return Project(config, target, root)


def record_run(
    project: Project,
    learning_rate: float = 0.001,
    accuracy: float = 0.85,
    version: str | None = "1",
    epochs: int = 3,
    dirty: bool = False,
) -> dict:
    """One run through edge.experiments.record whose body logs per-epoch metrics like the training job does."""

    def body(run) -> dict:
        for epoch in range(1, epochs + 1):
            print(f"epoch {epoch}/{epochs}")
            run.log_scalar("loss", 0.9 / epoch, epoch)
            run.log_scalar("val_loss", 1.0 / epoch, epoch)
            run.log_scalar("accuracy", accuracy - 0.1 / epoch, epoch)
            run.log_scalar("val_accuracy", accuracy - 0.12 / epoch, epoch)
        model = {"name": "projects/edge-twin/locations/us-central1/models/1", "version": version}
        return {"accuracy": accuracy, "loss": 0.4, "model": model, "run": run._id}

    params = {"epochs": epochs, "learning_rate": learning_rate, "seed": 42}
    lineage = {
        "git_commit": "0123456789abcdef",
        "git_dirty": dirty,
        "data": "d" * 32,
        "prepared": {},
        "params_hash": "p",
    }
    return experiments.record(project, project.config.model("fashion"), params, lineage, body)


@pytest.fixture
def record(project):
    """`record(**options)`: records one run in `project` (see record_run) and returns its result."""
    return lambda **options: record_run(project, **options)
