"""The training CustomJob: submitted with the trainer package, waited for at the target's pace with its
state and (where the target streams them) its log lines, cancelled if the command is interrupted."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from edge.config import ModelConfig
from edge.project import Project

log = logging.getLogger(__name__)

TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
# TensorFlow's start-up banners (C++ INFO lines in absl's or TF's format, and their continuation lines):
# noise in a job log a user reads. Its warnings and errors stay.
_TF_NOISE = re.compile(
    r"^(I\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+\.(?:cc|h):\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I \S+\.cc:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


_REPLICA = re.compile(r"^\[workerpool\d+-\d+\] ")  # the twin's prefix of a line of a job of several replicas


def is_noise(line: str) -> bool:
    """True for TensorFlow's informational start-up banners (of any replica)."""
    return bool(_TF_NOISE.match(_REPLICA.sub("", line, count=1)))


def worker_pools(model: ModelConfig, package: str, args: list[str], replicas: int) -> list[dict]:
    """The job's worker pools as Vertex defines them (and `CustomJob.from_local_script(replica_count=N)` makes
    them): pool 0 the chief, one replica; pool 1 the other N-1 workers, running the same package."""
    pool = {
        "machine_spec": {"machine_type": model.training.machine_type},
        "python_package_spec": {
            "executor_image_uri": model.training.image,
            "package_uris": [package],
            "python_module": model.training.module,
            "args": args,
        },
    }
    pools = [{**pool, "replica_count": 1}]
    if replicas > 1:
        pools.append({**pool, "replica_count": replicas - 1})
    return pools


def submit_job(
    project: Project,
    model: ModelConfig,
    package: str,
    args: list[str],
    base_output_dir: str,
    labels: dict[str, str],
    display_name: str,
    replicas: int = 1,
):
    """Submits the model's training CustomJob (the trainer module on `replicas` machines); returns the SDK job."""
    vertex = project.vertex()
    job = vertex.CustomJob(
        display_name=display_name,
        worker_pool_specs=worker_pools(model, package, args, replicas),
        base_output_dir=base_output_dir,
        labels=labels,
        staging_bucket=project.staging,
    )
    infra = project.state.read().infra  # gcp: Terraform's trainer account; empty on the twin
    job.submit(
        service_account=infra.get("service_accounts", {}).get("trainer"),
    )
    return job


def wait_for_job(project: Project, job) -> str:
    """Polls the job at the target's pace, logging its state changes and log lines; returns the final state."""
    target = project.target
    last_state, offset = None, 0
    hint = target.job_log_hint(job.resource_name)
    if hint:
        log.info("%s", hint)
    while True:
        state = job.state.name
        if state != last_state:
            log.info("[job] %s", state.removeprefix("JOB_STATE_").lower())
            last_state = state
        text, offset = target.read_job_log(job.resource_name, offset)
        for line in text.splitlines():
            if not is_noise(line):
                log.info("  %s", line)
        if state in TERMINAL:
            return state
        time.sleep(target.poll_seconds)


def wait_or_cancel(project: Project, job, wait: Callable[[], str]) -> str:
    """`wait()` for a job this command submitted; if it fails or is interrupted (Ctrl-C, a lost connection),
    the job is cancelled first, unless the target itself is gone: no orphan job."""
    try:
        return wait()
    except BaseException:
        if not project.target.lost():
            cancel_quietly(job)
        raise


def cancel_quietly(job) -> None:
    """Cancels a job this command submitted and can no longer wait for (Ctrl-C, a lost connection)."""
    try:
        job.cancel()
    except Exception as exc:  # the command's own error is what the user must see
        log.warning("could not cancel %s: %s", job.resource_name, exc.__class__.__name__)
