"""HyperparameterTuningJobs on the twin, driven by google-cloud-aiplatform: trials as CustomJobs with their
parameters as arguments, measurements from the cloudml-hypertune file, random and grid search, the parallel limit,
failed trials, cancel."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

import pytest

from tests.support import TRAINING_IMAGE

pytestmark = pytest.mark.timeout(300)

TRIAL_TASK = Path(__file__).with_name("trial_task.py")
DONE = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}


def score(parameters: dict) -> float:
    """What trial_task.py reports last for these parameters."""
    bonus = 0.5 if parameters.get("optimizer") == "adam" else 0.0
    return 10 - (parameters.get("x", 0.0) - 3) ** 2 + parameters.get("units", 0) / 100 + bonus


def tuning_job(vertex, bucket, parameters, *args, trials=4, parallel=2, algorithm="random", **options):
    from google.cloud.aiplatform import hyperparameter_tuning as hpt

    specs = {
        "x": hpt.DoubleParameterSpec(min=0.5, max=5.0, scale="log"),
        "units": hpt.IntegerParameterSpec(min=1, max=2, scale="linear"),
        "optimizer": hpt.CategoricalParameterSpec(values=["sgd", "adam"]),
    }
    trial = vertex.CustomJob.from_local_script(
        display_name="trial",
        script_path=str(TRIAL_TASK),
        container_uri=TRAINING_IMAGE,
        args=list(args),
        base_output_dir=f"gs://{bucket.name}/tuning/{uuid.uuid4().hex[:8]}",
    )
    return vertex.HyperparameterTuningJob(
        display_name="tune",
        custom_job=trial,
        metric_spec={"score": "maximize"},
        parameter_spec={name: specs[name] for name in parameters},
        max_trial_count=trials,
        parallel_trial_count=parallel,
        search_algorithm=algorithm,
        **options,
    )


def run(job, timeout: float = 180.0, watch=None) -> str:
    """Submits the job (`run(sync=False)`, as edge does) and polls it every 0.2 s; `watch(job)` at each poll."""
    job.run(sync=False)
    job.wait_for_resource_creation()
    deadline = time.monotonic() + timeout
    while (state := job.state.name) not in DONE:
        assert time.monotonic() < deadline, f"tuning job stayed {state}"
        if watch:
            watch(job)
        time.sleep(0.2)
    return state


def values(trial) -> dict:
    return {p.parameter_id: p.value for p in trial.parameters}


def test_random_search_runs_every_trial_with_its_parameters_and_reads_the_last_measurement(vertex, bucket, twin):
    job = tuning_job(vertex, bucket, ["x", "units", "optimizer"], measurement_selection="last")
    assert run(job) == "JOB_STATE_SUCCEEDED", job.error
    trials = job.trials
    assert [t.id for t in trials] == ["1", "2", "3", "4"]
    assert all(t.state.name == "SUCCEEDED" for t in trials)
    for trial in trials:
        given = values(trial)
        assert 0.5 <= given["x"] <= 5.0 and given["units"] in (1, 2) and given["optimizer"] in ("sgd", "adam")
        given["units"] = int(given["units"])
        (metric,) = trial.final_measurement.metrics
        assert metric.metric_id == "score" and metric.value == pytest.approx(score(given))
        assert trial.final_measurement.step_count == 3 and len(trial.measurements) == 3
        custom = vertex.CustomJob.get(trial.custom_job)
        arguments = custom.job_spec.worker_pool_specs[0].python_package_spec.args
        assert f"--units={int(given['units'])}" in arguments and f"--optimizer={given['optimizer']}" in arguments
        log = (twin.backend.jobs.folder(trial.custom_job) / "job.log").read_text()
        assert f"CLOUD_ML_TRIAL_ID={trial.id}\n" in log
        assert f"/{trial.id}/model/\n" in log  # AIP_MODEL_DIR = <base_output_dir>/<trial id>/model/
        assert f'"trial": "{trial.id}"' in log  # CLUSTER_SPEC's task.trial
    assert len({values(t)["x"] for t in trials}) == 4


def test_the_best_measurement_is_vertex_default(vertex, bucket):
    job = tuning_job(vertex, bucket, ["units"], trials=1, parallel=1)
    assert run(job) == "JOB_STATE_SUCCEEDED", job.error
    (trial,) = job.trials
    assert trial.final_measurement.step_count == 2
    assert trial.final_measurement.metrics[0].value == pytest.approx(
        score({"units": int(values(trial)["units"])}) + 0.3
    )


def test_grid_search_walks_every_combination_once_and_stops_when_the_grid_is_done(vertex, bucket):
    job = tuning_job(vertex, bucket, ["units", "optimizer"], trials=6, parallel=2, algorithm="grid")
    assert run(job) == "JOB_STATE_SUCCEEDED", job.error
    seen = sorted((int(values(t)["units"]), values(t)["optimizer"]) for t in job.trials)
    assert seen == [(1, "adam"), (1, "sgd"), (2, "adam"), (2, "sgd")]


def test_at_most_parallel_trial_count_trials_are_active_at_once(vertex, bucket):
    most = []

    def count(job):
        most.append(sum(t.state.name == "ACTIVE" for t in job._gca_resource.trials))

    job = tuning_job(vertex, bucket, ["units"], "--sleep", "1", trials=3, parallel=1)
    assert run(job, watch=count) == "JOB_STATE_SUCCEEDED", job.error
    assert max(most) == 1 and len(job.trials) == 3
    starts = sorted(t.start_time for t in job.trials)
    ends = sorted(t.end_time for t in job.trials)
    assert all(ends[i] <= starts[i + 1] for i in range(2)), "each trial started after the one before ended"


def test_failed_trials_are_infeasible_with_the_reason_and_fail_the_job_at_the_limit(vertex, bucket):
    job = tuning_job(vertex, bucket, ["units"], "--fail", trials=3, parallel=1, max_failed_trial_count=2)
    assert run(job) == "JOB_STATE_FAILED"
    trials = job.trials
    assert len(trials) == 2 and all(t.state.name == "INFEASIBLE" for t in trials)
    assert "asked to fail" in trials[0].infeasible_reason
    assert "2 of 2 trials failed" in job.error.message


def test_cancel_ends_the_running_trials_and_the_job_is_cancelled(vertex, bucket):
    job = tuning_job(vertex, bucket, ["units"], "--sleep", "120", trials=2, parallel=2)
    job.run(sync=False)
    job.wait_for_resource_creation()
    deadline = time.monotonic() + 60
    while not any(t.state.name == "ACTIVE" for t in job._gca_resource.trials) or job.state.name != "JOB_STATE_RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    job.cancel()
    deadline = time.monotonic() + 60
    while job.state.name not in DONE:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job.state.name == "JOB_STATE_CANCELLED"
    for trial in job.trials:
        assert trial.state.name == "INFEASIBLE"
        assert vertex.CustomJob.get(trial.custom_job).state.name == "JOB_STATE_CANCELLED"


def test_the_default_algorithm_is_random_search_on_the_twin_and_the_job_says_so(vertex, bucket, target):
    job = tuning_job(vertex, bucket, ["x"], trials=2, parallel=2, algorithm=None)
    assert run(job) == "JOB_STATE_SUCCEEDED", job.error
    text, _ = target.read_job_log(job.resource_name, 0)
    assert "not emulated" in text and "random search" in text
    assert all(math.isfinite(t.final_measurement.metrics[0].value) for t in job.trials)
    assert job.resource_name in [j.resource_name for j in vertex.HyperparameterTuningJob.list()]
    job.delete()
    assert job.resource_name not in [j.resource_name for j in vertex.HyperparameterTuningJob.list()]
