"""`invoke tune`: a Vertex HyperparameterTuningJob whose trials are the model's training job, each with the
parameters of its trial appended as `--name=value` (the search space is params.yaml's `tune:`, tune_spec.py).

The trainer reports the metric each epoch in cloudml-hypertune's file, which Vertex reads; every trial writes its
model to `<base>/<trial id>/model/` and its metrics beside it. Each trial that ends becomes an experiment run (params:
`train:` with the trial's values; lineage: commit, data, the tuning job, the trial and its job); with
`register_best`, the best trial's model becomes a new registry version, labelled like any trained version (it meets
the deploy gate like any other).
"""

from __future__ import annotations

import json
import logging
import time

from edge.config import ModelConfig
from edge.project import Project
from edge.training import TrainingError
from edge.training.inputs import load_params, params_hash
from edge.training.jobs import TERMINAL, wait_or_cancel, worker_pools
from edge.training.registry import lineage_labels, register
from edge.training.run import staged
from edge.training.tune_spec import TuneSpec, load_tune_spec

log = logging.getLogger(__name__)

DONE_TRIALS = ("SUCCEEDED", "INFEASIBLE")


class TrialFailed(TrainingError):
    """A trial that did not succeed, recorded as a failed experiment run."""


def run_tuning(project: Project, model: ModelConfig, register_best: bool = False) -> dict:
    """Runs the tuning job and waits for it, recording each trial as it ends; returns the job's name and state,
    the trials (parameters, metric, state, test accuracy, run), the best one and, with `register_best`, the
    registered version."""
    params = load_params(project, model)
    spec = load_tune_spec(project, model, params)
    inputs, package, lineage = staged(project, model)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"gs://{project.config.bucket}/tuning/{model.name}/{stamp}"
    args = [f"--{split}={uri}" for split, uri in inputs.uris.items()] + [f"--params-json={json.dumps(params)}"]
    job = _submit(project, model, spec, package, args, base, f"{model.name}-tune-{stamp}")
    runs: dict[str, object] = {}

    def record(trial) -> None:
        runs[trial.id] = _record_trial(project, model, spec, params, lineage, base, job.resource_name, trial)

    state = wait_or_cancel(project, job, lambda: wait_for_tuning(project, job, record))  # no orphan trials
    trials = [_row(trial, spec, params, runs) for trial in job.trials]
    best = _best(trials, spec)
    registered = None
    if register_best and best is not None:
        registered = _register_best(project, model, lineage, f"{base}/{best['trial']}/model", best)
    error = job.error.message if state != "JOB_STATE_SUCCEEDED" else None
    return {
        "job": job.resource_name,
        "state": state,
        "error": error,
        "metric": spec.metric,
        "goal": spec.goal,
        "parameters": list(spec.parameters),
        "trials": trials,
        "best": best,
        "registered": registered,
        "output": base,
        "model": model.name,
    }


def _register_best(project: Project, model: ModelConfig, lineage: dict, artifact_uri: str, best: dict) -> dict:
    """The best trial's model as a new version, labelled like a trained one, then evaluated on the held-out split
    and the evaluation imported (what the train pipeline's evaluate stage does): the deploy gate judges it like
    any other version. Returns the version, with its evaluation's summary and behavioural tests."""
    from edge.evaluation.registry import evaluation_for

    labels = lineage_labels(model, {**lineage, "params_hash": best["params_hash"]}, best["run"])
    registered = register(project, model, artifact_uri, labels)
    shown = evaluation_for(project, model, registered["version"])
    return {**registered, "evaluation": {"summary": shown["summary"], "behaviour": shown["behaviour"]}}


def _submit(project: Project, model: ModelConfig, spec: TuneSpec, package: str, args: list, base: str, name: str):
    """The tuning job, created (the SDK's `run(sync=False)`: edge polls it at the target's pace)."""
    vertex = project.vertex()
    labels = {"edge_model": model.name}
    trial_job = vertex.CustomJob(
        display_name=f"{name}-trial",
        worker_pool_specs=worker_pools(model, package, args, model.training.replicas),
        base_output_dir=base,
        labels=labels,
        staging_bucket=project.staging,
    )
    job = vertex.HyperparameterTuningJob(
        display_name=name,
        custom_job=trial_job,
        metric_spec={spec.metric: spec.goal.lower()},
        parameter_spec=spec.parameter_specs(),
        max_trial_count=spec.max_trials,
        parallel_trial_count=spec.parallel_trials,
        max_failed_trial_count=spec.max_failed_trials,
        search_algorithm=spec.algorithm,
        measurement_selection=spec.measurement,
        labels=labels,
    )
    infra = project.state.read().infra  # gcp: Terraform's trainer account; empty on the twin
    job.run(service_account=infra.get("service_accounts", {}).get("trainer"), sync=False)
    job.wait_for_resource_creation()
    log.info("tuning job %s: %d trials, %d at a time", job.resource_name, spec.max_trials, spec.parallel_trials)
    return job


def wait_for_tuning(project: Project, job, on_done) -> str:
    """Polls the job at the target's pace, logging each trial's changes (and, on the twin, the job's log);
    `on_done(trial)` once for each trial that ends. Returns the job's final state."""
    target = project.target
    hint = target.job_log_hint(job.resource_name)
    if hint:
        log.info("%s", hint)
    shown: dict[str, str] = {}
    offset = 0
    while True:
        state = job.state.name  # fetches the job, trials included
        for trial in job.trials:
            if shown.get(trial.id) == trial.state.name:
                continue
            shown[trial.id] = trial.state.name
            given = " ".join(f"{p.parameter_id}={_show(p.value)}" for p in trial.parameters)
            log.info("[trial %s] %s %s%s", trial.id, trial.state.name.lower(), given, _outcome(trial))
            if trial.state.name in DONE_TRIALS:
                on_done(trial)
        text, offset = target.read_job_log(job.resource_name, offset)
        for line in text.splitlines():
            log.info("  %s", line)
        if state in TERMINAL:
            return state
        time.sleep(target.poll_seconds)


def _outcome(trial) -> str:
    """What an ended trial measured, or why it failed."""
    if trial.state.name == "SUCCEEDED" and trial.final_measurement.metrics:
        metric = trial.final_measurement.metrics[0]
        return f": {metric.metric_id} {metric.value:.4f}"
    return f": {trial.infeasible_reason}" if trial.infeasible_reason else ""


def _show(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) and not value.is_integer() else str(_plain(value))


def _plain(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def trial_params(trial, params: dict) -> dict:
    """`train:` with the trial's values, each in the type of the value it replaces (a list from "32,64")."""
    values = dict(params)
    for p in trial.parameters:
        old, new = params.get(p.parameter_id), p.value
        if isinstance(old, list) and isinstance(new, str):
            new = [int(v) for v in new.strip("[]").split(",")]
        elif isinstance(old, int) and not isinstance(old, bool) and isinstance(new, float) and new.is_integer():
            new = int(new)
        values[p.parameter_id] = new
    return values


def _record_trial(project, model, spec, params, lineage, base, job_name, trial) -> int | None:
    """The trial as an experiment run (its metrics per epoch from the trainer's metrics.json); the run's id."""
    from edge import experiments
    from edge.training.run import final_metrics, read_metrics

    values = trial_params(trial, params)
    info = {**lineage, "params_hash": params_hash(values), "tuning_job": job_name, "trial": trial.id}
    info["job"] = trial.custom_job
    seen: dict = {}

    def body(run) -> dict:
        seen["run"] = run._id
        if trial.state.name != "SUCCEEDED":
            raise TrialFailed(f"trial {trial.id} {trial.state.name}: {trial.infeasible_reason}")
        metrics = read_metrics(project, f"{base}/{trial.id}/metrics.json")
        for row in metrics.get("epochs") or []:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    run.log_scalar(key, value, row["epoch"])
        measured = trial.final_measurement.metrics[0].value
        return {**final_metrics(metrics), spec.metric: measured, "trial": trial.id, "job": trial.custom_job}

    try:
        experiments.record(project, model, values, info, body)
    except TrialFailed:
        pass
    return seen.get("run")


def _row(trial, spec: TuneSpec, params: dict, runs: dict) -> dict:
    values = trial_params(trial, params)
    measured = trial.final_measurement.metrics[0].value if trial.final_measurement.metrics else None
    return {
        "trial": trial.id,
        "state": trial.state.name,
        "parameters": {p.parameter_id: values[p.parameter_id] for p in trial.parameters},
        "metric": measured,
        "run": runs.get(trial.id),
        "job": trial.custom_job,
        "params_hash": params_hash(values),
        "reason": trial.infeasible_reason or None,
    }


def _best(trials: list[dict], spec: TuneSpec) -> dict | None:
    best = None
    for row in trials:
        if row["state"] == "SUCCEEDED" and row["metric"] is not None:
            if best is None or spec.better(row["metric"], best["metric"]):
                best = row
    return best
