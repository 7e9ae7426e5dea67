"""Experiment tracking with Sacred: a file store under .edge/experiments/ or MongoDB (Omniboard) when provisioned."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from edge.config import ModelConfig
from edge.project import Project

MONGO_ENV = "EDGE_SACRED_MONGO_URI"  # the Sacred connection string; on gcp it comes from Secret Manager


def mongo_uri(project: Project) -> str | None:
    """The MongoDB URI from the environment, or on gcp from Secret Manager when the tracker is provisioned."""
    if os.environ.get(MONGO_ENV):
        return os.environ[MONGO_ENV]
    if project.target.is_local or not project.config.tracker.enabled:
        return None
    tracker = project.state.read()[0].get("infra", {}).get("tracker") or {}
    if not tracker.get("sacred_mongo_uri_secret"):
        return None  # not provisioned yet (invoke init --target gcp): runs go to the file store
    from google.cloud import secretmanager

    name = f"projects/{project.config.project}/secrets/{tracker['sacred_mongo_uri_secret']}/versions/latest"
    return secretmanager.SecretManagerServiceClient().access_secret_version(name=name).payload.data.decode()


def store_dir(project: Project, model: ModelConfig) -> Path:
    return project.home / "experiments" / model.name


def record(project: Project, model: ModelConfig, params: dict, lineage: dict, body: Callable) -> dict:
    """Runs `body(run)` as a Sacred run with `params` as its config and `lineage` in its info."""
    from sacred import SETTINGS, Experiment
    from sacred.observers import FileStorageObserver, MongoObserver

    SETTINGS.CAPTURE_MODE = "sys"
    experiment = Experiment(model.name, save_git_info=False, interactive=True)
    experiment.add_config(params)
    uri = mongo_uri(project)
    experiment.observers.append(
        MongoObserver(url=uri, db_name="sacred") if uri else FileStorageObserver(str(store_dir(project, model)))
    )

    @experiment.main
    def main(_run):
        _run.info.update(lineage)
        return body(_run)

    return experiment.run().result


def list_runs(project: Project, model: ModelConfig) -> list[dict]:
    """Runs of the file store, oldest first: id, status, start, host, config, info, result, metrics."""
    folder = store_dir(project, model)
    runs = []
    for run_dir in sorted(folder.glob("[0-9]*"), key=lambda p: int(p.name)) if folder.exists() else []:

        def load(name, run_dir=run_dir):
            path = run_dir / name
            return json.loads(path.read_text()) if path.exists() else {}

        run = load("run.json")
        runs.append(
            {
                "id": int(run_dir.name),
                "status": run.get("status"),
                "start": run.get("start_time"),
                "host": run.get("host", {}).get("hostname"),
                "config": load("config.json"),
                "info": load("info.json"),
                "result": run.get("result") or {},
                "metrics": load("metrics.json"),
            }
        )
    return runs


def _flatten(prefix: str, value) -> dict:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    return {prefix: value}


def differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(field, value in a, value in b) for each param, lineage field and metric that differs."""

    def summary(run: dict) -> dict:
        result = run["result"]
        return {
            **_flatten("params", run["config"]),
            **_flatten("lineage", run["info"]),
            "accuracy": result.get("accuracy"),
            "loss": result.get("loss"),
            "model_version": (result.get("model") or {}).get("version"),
            "status": run["status"],
        }

    left, right = summary(a), summary(b)
    keys = [k for k in sorted(set(left) | set(right)) if k != "params.seed" or left.get(k) != right.get(k)]
    return [("run", a["id"], b["id"])] + [(k, left.get(k), right.get(k)) for k in keys if left.get(k) != right.get(k)]
