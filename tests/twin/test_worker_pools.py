"""CustomJobs of several replicas on the twin, driven by google-cloud-aiplatform: every replica a process with its
CLUSTER_SPEC and TF_CONFIG as Vertex formats them, one failing replica fails the job and ends the others, a cancel
ends them all, empty pools in the middle are accepted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support import TRAINING_IMAGE

pytestmark = pytest.mark.timeout(300)

REPLICA_TASK = Path(__file__).with_name("replica_task.py")
DONE = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}


def replica_job(vertex, *args: str, replicas: int = 2, name: str = "replicas"):
    """What `from_local_script(replica_count=N)` makes: pool 0 with the primary replica, pool 1 with N-1 workers."""
    return vertex.CustomJob.from_local_script(
        display_name=name,
        script_path=str(REPLICA_TASK),
        container_uri=TRAINING_IMAGE,
        args=list(args),
        replica_count=replicas,
    )


def wait_for(job, states, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while (state := job.state.name) not in states:
        assert time.monotonic() < deadline, f"job stayed {state}, expected {states}"
        time.sleep(0.2)
    return state


def environments(twin, job) -> dict[str, dict]:
    """Replica name -> {"CLUSTER_SPEC": ..., "TF_CONFIG": ...} as the replica printed them, from its own log."""
    found = {}
    for log in sorted((twin.backend.jobs.folder(job.resource_name) / "replicas").glob("*.log")):
        lines = dict(line.split(" ", 1) for line in log.read_text().splitlines() if line.startswith(("CLU", "TF_")))
        found[log.stem] = {key: json.loads(value) for key, value in lines.items()}
    return found


def test_two_replicas_get_vertex_cluster_spec_and_tf_config_on_free_local_ports(vertex, twin, target):
    job = replica_job(vertex)
    job.submit()
    assert wait_for(job, DONE) == "JOB_STATE_SUCCEEDED", job.error
    found = environments(twin, job)
    assert set(found) == {"workerpool0-0", "workerpool1-0"}
    chief, worker = found["workerpool0-0"], found["workerpool1-0"]
    cluster = chief["CLUSTER_SPEC"]["cluster"]
    assert set(cluster) == {"workerpool0", "workerpool1"} and worker["CLUSTER_SPEC"]["cluster"] == cluster
    addresses = cluster["workerpool0"] + cluster["workerpool1"]
    assert len(set(addresses)) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert chief["CLUSTER_SPEC"]["task"] == {"type": "workerpool0", "index": 0}
    assert worker["CLUSTER_SPEC"]["task"] == {"type": "workerpool1", "index": 0}
    assert chief["TF_CONFIG"]["cluster"] == {"chief": cluster["workerpool0"], "worker": cluster["workerpool1"]}
    assert chief["TF_CONFIG"]["task"] == {"type": "chief", "index": 0}
    assert worker["TF_CONFIG"]["task"] == {"type": "worker", "index": 0}
    assert chief["TF_CONFIG"]["environment"] == chief["CLUSTER_SPEC"]["environment"] == "cloud"
    assert chief["CLUSTER_SPEC"]["job"]["workerPoolSpecs"][1]["replicaCount"] == "1"
    text, _ = target.read_job_log(job.resource_name, 0)  # what `invoke train` streams: each line with its replica
    assert "[workerpool0-0] replica workerpool0: done" in text
    assert "[workerpool1-0] replica workerpool1: done" in text


def test_a_failing_worker_fails_the_job_and_ends_the_primary_replica(vertex, twin):
    job = replica_job(vertex, "--fail", "workerpool1", "--sleep", "120", "--sleep-type", "workerpool0", name="failing")
    started = time.monotonic()
    job.submit()
    wait_for(job, {"JOB_STATE_RUNNING"} | DONE)
    processes = list(twin.backend.jobs.processes.get(job.resource_name, []))
    assert wait_for(job, DONE) == "JOB_STATE_FAILED"
    assert time.monotonic() - started < 60, "the sleeping primary replica was ended, not waited for"
    assert "The replica workerpool1-0 exited with a non-zero status of 3" in job.error.message
    assert "asked to fail" in job.error.message
    assert len(processes) == 2 and all(p.poll() is not None for p in processes)


def test_cancel_ends_every_replica(vertex, twin):
    job = replica_job(vertex, "--sleep", "120", replicas=3, name="sleepy-cluster")
    job.submit()
    wait_for(job, {"JOB_STATE_RUNNING"})
    processes = list(twin.backend.jobs.processes[job.resource_name])
    job.cancel()
    assert wait_for(job, DONE) == "JOB_STATE_CANCELLED"
    assert len(processes) == 3 and all(p.poll() is not None for p in processes)
    assert job.error.message == "CustomJob was cancelled."


def test_empty_pools_in_the_middle_are_accepted_as_the_sdk_sends_them(vertex, twin):
    primary = replica_job(vertex, replicas=1, name="template").job_spec.worker_pool_specs[0]
    evaluator = type(primary)(primary)
    job = vertex.CustomJob(display_name="sparse-pools", worker_pool_specs=[primary, {}, {}, evaluator])
    job.submit()
    assert wait_for(job, DONE) == "JOB_STATE_SUCCEEDED", job.error
    found = environments(twin, job)
    assert set(found) == {"workerpool0-0", "workerpool3-0"}
    assert set(found["workerpool3-0"]["CLUSTER_SPEC"]["cluster"]) == {"workerpool0", "workerpool3"}
    # TensorFlow's evaluator is no member of the training cluster
    assert found["workerpool3-0"]["TF_CONFIG"]["cluster"] == {
        "chief": found["workerpool0-0"]["TF_CONFIG"]["cluster"]["chief"]
    }
    assert found["workerpool3-0"]["TF_CONFIG"]["task"] == {"type": "evaluator", "index": 0}


@pytest.mark.parametrize(
    "pools, reason",
    [
        (lambda p: [{**p, "replica_count": 2}], "its replicaCount must be 1"),
        (lambda p: [p, {**p, "replica_count": 20}], "at most 8 replicas"),
    ],
)
def test_a_cluster_the_twin_cannot_run_fails_with_the_reason(vertex, pools, reason):
    from google.protobuf.json_format import MessageToDict

    primary = MessageToDict(
        replica_job(vertex, replicas=1, name="template").job_spec.worker_pool_specs[0]._pb,
        preserving_proto_field_name=True,
    )
    job = vertex.CustomJob(display_name="refused", worker_pool_specs=pools(primary))
    job.submit()
    assert wait_for(job, DONE) == "JOB_STATE_FAILED"
    assert reason in job.error.message
