"""One training run: inputs staged, the job run and waited for, its metrics read, the version registered,
all recorded as one Sacred run with the lineage in its info."""

from __future__ import annotations

import json
import time

from edge.config import ModelConfig
from edge.project import Project
from edge.training import TrainingError
from edge.training.inputs import StageInputs, load_params, params_hash, stage_inputs
from edge.training.jobs import cancel_quietly, submit_job, wait_for_job
from edge.training.packaging import stage_trainer
from edge.training.registry import git_lineage, lineage_labels, register


def run_training(project: Project, model: ModelConfig) -> dict:
    """Trains on Vertex (or the twin), registers the model version with lineage, records the Sacred run.
    Returns the run's result with the job's full metrics under "metrics" and the lineage under "lineage"."""
    from edge import experiments
    from edge.data import data_version

    params = load_params(project, model)
    inputs = stage_inputs(project, model)
    package = stage_trainer(project, model)
    commit, dirty = git_lineage(project.root)
    lineage = {
        "git_commit": commit,
        "git_dirty": dirty,
        "data": data_version(project, model) or "none",
        "prepared": inputs.hashes,
        "params_hash": params_hash(params),
    }
    metrics: dict = {}  # the job's full metrics (the Sacred result keeps the summary)

    def body(run) -> dict:
        return _train(project, model, run, params, inputs, package, lineage, metrics)

    result = experiments.record(project, model, params, lineage, body)
    return {**result, "metrics": metrics, "lineage": lineage}


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
    """The body of the Sacred run: the job, its metrics per epoch, the registry version."""
    base = f"gs://{project.config.bucket}/runs/{model.name}/{time.strftime('%Y%m%d-%H%M%S')}-{run._id}"
    args = [f"--{split}={uri}" for split, uri in inputs.uris.items()]
    args += [f"--params-json={json.dumps(params)}", f"--metrics-uri={base}/metrics.json"]
    job = None
    try:
        job = submit_job(
            project,
            model,
            package,
            args,
            base,
            {"edge_model": model.name, "edge_run": str(run._id)},
            display_name=f"{model.name}-train-{run._id}",
        )
        run.info["job"] = job.resource_name
        state = wait_for_job(project, job)
    except BaseException:  # Ctrl-C or a lost connection: no orphan job, nothing registered
        if job is not None and job.resource_name and not project.target.lost():
            cancel_quietly(job)
        raise
    if state != "JOB_STATE_SUCCEEDED":
        message = job.error.message.strip().splitlines()[0] if job.error.message else state
        raise TrainingError(f"training job {job.resource_name} ended {state}: {message}")
    metrics.update(json.loads(project.bucket.blob(f"{base.split('/', 3)[3]}/metrics.json").download_as_bytes()))
    for row in metrics["epochs"]:
        for key, value in row.items():
            if key != "epoch":
                run.log_scalar(key, value, row["epoch"])
    version = register(project, model, f"{base}/model", lineage_labels(model, lineage, run._id))
    run.info["model_version"] = version
    return {
        "accuracy": metrics["accuracy"],
        "loss": metrics["loss"],
        "model": version,
        "job": job.resource_name,
        "run": run._id,
    }
