"""`invoke predict --batch`: a Vertex BatchPredictionJob of a registry version over JSON Lines instances.

The instances come from a local file (uploaded to `gs://<bucket>/batch/<model>/<time>/instances.jsonl`) or from
gs:// (an object, or a pattern with `*`); the results go to `gs://<bucket>/batch/<model>/<time>/`, in the folder
the job names (`prediction-<model>-<time>`). Lines are checked by the job, not here: a bad line is counted in the
job's errors file and never stops it. The job is the SDK's `BatchPredictionJob.submit` (what `Model.batch_predict`
creates, without blocking), so edge shows its progress at the target's pace and reads the results back with
`iter_outputs()`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

from edge.config import ModelConfig
from edge.errors import EdgeError
from edge.project import Project
from edge.training.jobs import wait_or_cancel

log = logging.getLogger(__name__)

TERMINAL = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")
PROGRESS_SECONDS = 2.0  # at most one progress line this often


class BatchError(EdgeError):
    """A batch prediction could not go on; the message is one line."""


def source_uri(project: Project, model: ModelConfig, source: str, folder: str) -> str:
    """The gs:// URI of the instances: a local file uploaded under `folder`, or a gs:// URI that names something."""
    if source.startswith("gs://"):
        bucket_name, _, name = source.removeprefix("gs://").partition("/")
        bucket = project.target.storage_client().bucket(bucket_name)
        prefix = name.split("*", 1)[0]
        found = bucket.blob(name).exists() if "*" not in name else any(bucket.list_blobs(prefix=prefix, max_results=1))
        if not found:
            raise BatchError(f"{source} does not exist")
        return source
    path = Path(source) if Path(source).is_absolute() else project.root / source
    if not path.is_file():
        raise BatchError(f"{source} is not a file (give a JSON Lines file or a gs:// URI)")
    name = f"{folder}/instances.jsonl"
    project.bucket.blob(name).upload_from_filename(str(path))
    return f"gs://{project.config.bucket}/{name}"


def predict_batch(project: Project, model: ModelConfig, source: str, version: str | None, summary: bool) -> dict:
    """Runs a batch prediction of `version` (default: the default version) over `source` and waits for it; returns
    the job, its state, counts, results directory and, with `summary`, the classes predicted and how often."""
    from edge.deploy import resolve_version

    registry_model = resolve_version(project, model, version)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = f"batch/{model.name}/{stamp}"
    uri = source_uri(project, model, source, folder)
    vertex = project.vertex()
    infra = project.state.read().infra  # gcp: Terraform's trainer account (it reads and writes the bucket)
    job = vertex.BatchPredictionJob.submit(
        job_display_name=f"{model.name}-batch-{stamp}",
        model_name=registry_model,
        gcs_source=uri,
        instances_format="jsonl",
        gcs_destination_prefix=f"gs://{project.config.bucket}/{folder}",
        predictions_format="jsonl",
        machine_type=model.serving.machine_type,
        starting_replica_count=1,
        max_replica_count=max(1, model.serving.max_replicas),
        labels={"edge_model": model.name},
        service_account=infra.get("service_accounts", {}).get("trainer"),
    )
    state = wait_or_cancel(project, job, lambda: wait_for_batch(project, job))
    stats = job.completion_stats
    result = {
        "job": job.resource_name,
        "version": registry_model.version_id,
        "state": state,
        "error": job.error.message if state != "JOB_STATE_SUCCEEDED" else None,
        "source": uri,
        "output": job.output_info.gcs_output_directory or None,
        "successful": stats.successful_count,
        "failed": stats.failed_count,
    }
    if summary and state == "JOB_STATE_SUCCEEDED":
        result["classes"] = count_classes(project, model, job)
    return result


def wait_for_batch(project: Project, job) -> str:
    """Polls the job at the target's pace, showing its state, counts and (on the twin) its log; the final state."""
    target = project.target
    hint = target.job_log_hint(job.resource_name)
    if hint:
        log.info("%s", hint)
    shown, offset, shown_at = (None, None), 0, 0.0
    while True:
        state = job.state.name
        stats = job.completion_stats
        counts = (stats.successful_count, stats.failed_count) if stats else (0, 0)
        due = counts != shown[1] and (time.monotonic() - shown_at >= PROGRESS_SECONDS or state in TERMINAL)
        if state != shown[0] or due:
            log.info("[batch] %s: %d predicted, %d failed", state.removeprefix("JOB_STATE_").lower(), *counts)
            shown, shown_at = (state, counts), time.monotonic()
        text, offset = target.read_job_log(job.resource_name, offset)
        for line in text.splitlines():
            log.info("  %s", line)
        if state in TERMINAL:
            return state
        time.sleep(target.poll_seconds)


def count_classes(project: Project, model: ModelConfig, job) -> dict[str, int]:
    """How often each class was predicted, read from the job's results (`iter_outputs()`), by class name."""
    spec = project.spec(model)
    counts: Counter = Counter()
    for blob in job.iter_outputs():
        if "prediction.results" not in blob.name.rsplit("/", 1)[-1]:
            continue
        for line in blob.download_as_text().splitlines():
            if line.strip():
                counts[spec.read_prediction(json.loads(line)["prediction"])["class_id"]] += 1
    return {f"{class_id} {spec.label(class_id)}": n for class_id, n in sorted(counts.items())}
