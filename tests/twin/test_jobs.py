"""CustomJobs on the twin: real processes, real states, driven by google-cloud-aiplatform."""

from __future__ import annotations

import time

import pytest

from tests.support import TRAIN_LINE, TRAINING_IMAGE, run_job

pytestmark = pytest.mark.timeout(300)


def line_job(vertex, *args, name="train-line"):
    return vertex.CustomJob.from_local_script(
        display_name=name, script_path=str(TRAIN_LINE), container_uri=TRAINING_IMAGE, args=list(args)
    )


def wait_for_state(job, states, timeout=120.0):
    deadline = time.monotonic() + timeout
    while job.state.name not in states:
        assert time.monotonic() < deadline, f"job stayed {job.state.name}, expected {states}"
        time.sleep(0.2)
    return job.state.name


def test_a_failing_script_ends_failed_with_its_exit_code_and_last_log_lines(vertex):
    job = line_job(vertex, "--fail", name="failing")
    with pytest.raises(RuntimeError, match="Job failed"):
        run_job(job)
    assert job.state.name == "JOB_STATE_FAILED"
    assert "non-zero status of 3" in job.error.message
    assert "asked to fail" in job.error.message


def test_cancel_ends_the_process_group_and_the_job_is_cancelled(vertex, twin):
    job = line_job(vertex, "--sleep", "120", name="sleepy")
    job.submit()
    wait_for_state(job, {"JOB_STATE_RUNNING"})
    (process,) = twin.backend.jobs.processes[job.resource_name]
    job.cancel()
    assert wait_for_state(job, {"JOB_STATE_CANCELLED", "JOB_STATE_FAILED"}) == "JOB_STATE_CANCELLED"
    assert process.poll() is not None
    assert job.error.message == "CustomJob was cancelled."


def test_a_container_job_fails_with_the_reason(vertex):
    job = vertex.CustomJob(
        display_name="container",
        worker_pool_specs=[
            {
                "machine_spec": {"machine_type": "n1-standard-4"},
                "replica_count": 1,
                "container_spec": {"image_uri": "europe-docker.pkg.dev/p/r/trainer:1"},
            }
        ],
    )
    job.submit()
    wait_for_state(job, {"JOB_STATE_FAILED", "JOB_STATE_SUCCEEDED"})
    assert job.state.name == "JOB_STATE_FAILED"
    assert "no container engine" in job.error.message


def test_a_job_moves_through_queued_pending_running_to_succeeded(vertex, twin):
    job = line_job(vertex, "--steps", "5")
    job.submit()
    seen = []
    while job.state.name not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
        if not seen or seen[-1] != job.state.name:
            seen.append(job.state.name)
        time.sleep(0.05)
    seen.append(job.state.name)
    assert seen[-1] == "JOB_STATE_SUCCEEDED"
    order = ["JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert "JOB_STATE_RUNNING" in seen
    log = twin.backend.jobs.log_path(job.resource_name).read_text()
    assert "trained: w=" in log
