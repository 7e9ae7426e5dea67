"""The training CustomJob: submitted with the trainer package, waited for at the target's pace with its
state and (where the target streams them) its log lines, cancelled if the command is interrupted."""

from __future__ import annotations

import logging
import re
import time

from edge.config import ModelConfig
from edge.project import Project

log = logging.getLogger(__name__)

TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
# TensorFlow's start-up banners (C++ INFO lines in absl's or TF's format, and their continuation lines):
# noise in a job log a user reads. Its warnings and errors stay.
_TF_NOISE = re.compile(
    r"^(I\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\.cc:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I \S+\.cc:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def is_noise(line: str) -> bool:
    """True for TensorFlow's informational start-up banners."""
    return bool(_TF_NOISE.match(line))


def submit_job(
    project: Project,
    model: ModelConfig,
    package: str,
    args: list[str],
    base_output_dir: str,
    labels: dict[str, str],
    display_name: str,
):
    """Submits the model's training CustomJob (one replica running the trainer module); returns the SDK job."""
    vertex = project.vertex()
    job = vertex.CustomJob(
        display_name=display_name,
        worker_pool_specs=[
            {
                "machine_spec": {"machine_type": model.training.machine_type},
                "replica_count": 1,
                "python_package_spec": {
                    "executor_image_uri": model.training.image,
                    "package_uris": [package],
                    "python_module": model.training.module,
                    "args": args,
                },
            }
        ],
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


def cancel_quietly(job) -> None:
    """Cancels a job this command submitted and can no longer wait for (Ctrl-C, a lost connection)."""
    try:
        job.cancel()
    except Exception as exc:  # the command's own error is what the user must see
        log.warning("could not cancel %s: %s", job.resource_name, exc.__class__.__name__)
