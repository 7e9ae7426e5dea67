"""One training run: inputs staged, the job run and waited for, its metrics read, the version registered,
all recorded as one Sacred run with the lineage in its info."""

from __future__ import annotations

import json
import time

from edge.config import ModelConfig
from edge.project import Project
from edge.training import TrainingError
from edge.training.inputs import StageInputs, load_params, params_hash, stage_inputs
from edge.training.jobs import submit_job, wait_for_job, wait_or_cancel
from edge.training.packaging import stage_trainer
from edge.training.registry import git_lineage, lineage_labels, register


def run_training(project: Project, model: ModelConfig, replicas: int | None = None) -> dict:
    """Trains on Vertex (or the twin) on `replicas` machines (default: edge.yaml's), registers the model version
    with lineage, records the Sacred run. Returns the run's result with the job's full metrics under "metrics" and
    the lineage under "lineage"."""
    from edge import experiments

    params = load_params(project, model)
    inputs, package, lineage = staged(project, model, replicas)
    lineage["params_hash"] = params_hash(params)
    metrics: dict = {}  # the job's full metrics (the Sacred result keeps the summary)

    def body(run) -> dict:
        return _train(project, model, run, params, inputs, package, lineage, metrics)

    result = experiments.record(project, model, params, lineage, body)
    return {**result, "metrics": metrics, "lineage": lineage}


def staged(project: Project, model: ModelConfig, replicas: int | None = None) -> tuple[StageInputs, str, dict]:
    """What a training job (or a tuning job's trials) needs: the prepared inputs and the trainer package staged in
    the bucket, and the lineage (git commit and dirtiness, data version, prepared inputs' hashes, replicas)."""
    from edge.data import data_version

    inputs = stage_inputs(project, model)
    package = stage_trainer(project, model)
    commit, dirty = git_lineage(project.root)
    lineage = {
        "git_commit": commit,
        "git_dirty": dirty,
        "data": data_version(project, model) or "none",
        "prepared": inputs.hashes,
        "replicas": replicas or model.training.replicas,
    }
    return inputs, package, lineage


def _train(
    project: Project,
    model: ModelConfig,
    run,
    params: dict,
    inputs: StageInputs,
    package: str,
    lineage: dict,
    metrics: dict,
) -> dict:
    """The body of the Sacred run: the job, its metrics (per epoch too, when the trainer reports epochs), the
    registry version. The run's result: the final metrics, the version, the job and the run id."""
    base = f"gs://{project.config.bucket}/runs/{model.name}/{time.strftime('%Y%m%d-%H%M%S')}-{run._id}"
    args = [f"--{split}={uri}" for split, uri in inputs.uris.items()]
    args += [f"--params-json={json.dumps(params)}", f"--metrics-uri={base}/metrics.json"]
    job = submit_job(
        project,
        model,
        package,
        args,
        base,
        {"edge_model": model.name, "edge_run": str(run._id)},
        display_name=f"{model.name}-train-{run._id}",
        replicas=lineage["replicas"],
    )
    run.info["job"] = job.resource_name
    state = wait_or_cancel(project, job, lambda: wait_for_job(project, job))  # nothing registered if it fails
    if state != "JOB_STATE_SUCCEEDED":
        message = job.error.message.strip().splitlines()[0] if job.error.message else state
        raise TrainingError(f"training job {job.resource_name} ended {state}: {message}")
    metrics.update(read_metrics(project, f"{base}/metrics.json"))
    for row in metrics.get("epochs") or []:
        for key, value in row.items():
            if key != "epoch" and _is_number(value):
                run.log_scalar(key, value, row["epoch"])
    version = register(project, model, f"{base}/model", lineage_labels(model, lineage, run._id))
    run.info["model_version"] = version
    return {**final_metrics(metrics), "model": version, "job": job.resource_name, "run": run._id}


def read_metrics(project: Project, uri: str) -> dict:
    """The metrics JSON object the trainer wrote to `uri` (its contract: models/README.md, "The trainer")."""
    blob = project.bucket.blob(uri.split("/", 3)[3])
    try:
        metrics = json.loads(blob.download_as_bytes())
    except ValueError:
        raise TrainingError(f"the trainer's metrics at {uri} are not JSON") from None
    if not isinstance(metrics, dict):
        raise TrainingError(f"the trainer's metrics at {uri} must be a JSON object, got {type(metrics).__name__}")
    epochs = metrics.get("epochs")
    if epochs is not None and not (
        isinstance(epochs, list) and all(isinstance(r, dict) and "epoch" in r for r in epochs)
    ):
        raise TrainingError(f"the trainer's metrics at {uri}: `epochs` must be a list of rows with an `epoch` each")
    return metrics


def final_metrics(metrics: dict) -> dict:
    """The run's final metrics: every number at the top level of the trainer's metrics (accuracy, loss...)."""
    return {key: value for key, value in metrics.items() if _is_number(value) and not key.endswith("_rows")}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
