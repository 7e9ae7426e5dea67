"""Experiment runs, recorded by Sacred in the project bucket so that every clone (and Omniboard on gcp) sees them.

One layout on both targets (the target only says where the storage client points):

    gs://<bucket>/experiments/<model>/<id>/claim.json    who took the run id and when (created once, see store.py)
                                           run.json      Sacred's run: host, start and stop, status, result
                                           config.json   the params of the run
                                           info.json     lineage: git commit, dirty tree (files, diff), data, who,
                                                         job, model version
                                           metrics.json  metrics per epoch (loss, accuracy, val_loss, val_accuracy)
                                           cout.txt      the captured output
    gs://<bucket>/experiments/<model>/_sources/          Sacred's copies of the experiment's source files
    gs://<bucket>/experiments/<model>/_origins/<digest>.json
                                           which run of a clone's old .edge/experiments/ became which id (local.py)

Nothing is written to MongoDB from the training machine: on gcp, an importer on the tracker VM copies new runs
from the bucket into Omniboard's MongoDB (infra/modules/experiment_tracker/importer/), so a tracker that is down
never fails a training run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge.config import ModelConfig
from edge.experiments.store import RUNS_PREFIX, flatten, read_runs, runs_prefix
from edge.project import Project

__all__ = ["RUNS_PREFIX", "differences", "list_runs", "record", "runs_prefix", "upload_local_runs"]

# What `--compare` shows of a run's info besides the params (the diff itself is in --json and the report).
COMPARED_INFO = ("who", "git_commit", "git_dirty", "git_changed_files", "data", "prepared", "params_hash")


def record(project: Project, model: ModelConfig, params: dict, lineage: dict, body: Callable) -> dict:
    """Runs `body(run)` as a Sacred run of `model` stored in the bucket: `params` as its config; `lineage`,
    who ran it and, for a dirty working tree, the changed files and their diff in its info. Returns the result."""
    from sacred import SETTINGS, Experiment

    from edge.experiments.observer import BucketObserver
    from edge.experiments.provenance import git_changes, who

    SETTINGS.CAPTURE_MODE = "sys"
    experiment = Experiment(model.name, save_git_info=False, interactive=True)
    experiment.logger = _quiet_sacred_logger()
    experiment.add_config(params)
    info = {**lineage, "who": who()}
    if lineage.get("git_dirty"):
        info.update(git_changes(project.root, first=[model.params]))
    observer = BucketObserver(project.bucket, runs_prefix(model.name), info["who"], lost=project.target.lost)
    experiment.observers.append(observer)

    @experiment.main
    def main(_run):
        _run.info.update(info)
        observer.info = _run.info  # the dict Sacred hands the heartbeats: the run's end saves it as it is then
        return body(_run)

    return experiment.run().result


def _quiet_sacred_logger() -> logging.Logger:
    """Sacred's own lines (running, started, result, aborted, failed) repeat what edge says itself, on stderr:
    they go to a logger of edge's that passes none of them. The observer says where the run is."""
    logger = logging.getLogger("edge.experiments.sacred")
    logger.setLevel(logging.CRITICAL)
    return logger


def list_runs(project: Project, model: ModelConfig, ids: set[int] | None = None) -> list[dict]:
    """The model's runs in the bucket (all, or those in `ids`), oldest first; see `store.read_runs`."""
    return read_runs(project.bucket, runs_prefix(model.name), ids)


def upload_local_runs(project: Project, model: ModelConfig) -> list[tuple[int, int]]:
    """Puts the runs of the clone's old `.edge/experiments/<model>/` into the bucket, each once (see local.py);
    returns (local id, bucket id) for each run uploaded now."""
    from edge.experiments.local import upload_local_runs as upload

    return upload(project.bucket, project.home / "experiments" / model.name, runs_prefix(model.name))


def _summary(run: dict) -> dict:
    result = run["result"]
    info = {key: run["info"][key] for key in COMPARED_INFO if key in run["info"]}
    return {
        **flatten("params", run["config"]),
        **flatten("lineage", info),
        "accuracy": result.get("accuracy"),
        "loss": result.get("loss"),
        "model_version": (result.get("model") or {}).get("version"),
        "status": run["status"],
    }


def differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(field, value in a, value in b) for each param, lineage field and metric that differs."""
    left, right = _summary(a), _summary(b)
    keys = sorted(set(left) | set(right))
    return [("run", a["id"], b["id"])] + [(k, left.get(k), right.get(k)) for k in keys if left.get(k) != right.get(k)]
