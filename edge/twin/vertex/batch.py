"""BatchPredictionJobs: a model version run over JSON Lines in the bucket, results written back as Vertex does.

Each job runs in a process of its own (batch_worker.py, under the lifeline supervisor like a CustomJob's replica),
not in a thread of the twin: the model (TensorFlow) stays out of the process that serves every API, a cancel ends
the process group at once, and a dying twin takes the job with it. It shares the CustomJobs' slots (at most two jobs
of either kind run at once). States go QUEUED -> PENDING (the artifact fetched) -> RUNNING (the results directory
`<outputUriPrefix>/prediction-<model display name>-<create time>` in `outputInfo`, `completionStats` growing) ->
SUCCEEDED, or FAILED (the model could not be loaded, no input, every instance failed), or CANCELLED. Only
`jsonl` in and out of gs:// is emulated (no BigQuery, CSV, TFRecord or file lists).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from edge.twin import logs, orphans
from edge.twin.errors import FailedPrecondition, InvalidArgument, Unimplemented
from edge.twin.lifeline import Lifeline
from edge.twin.vertex import filters
from edge.twin.vertex.artifacts import Artifacts, split_uri
from edge.twin.vertex.jobs import ACTIVE, CustomJobs, supervised, terminate_group
from edge.twin.vertex.models import ModelRegistry
from edge.twin.vertex.store import Operations, Store, now

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BATCH_SIZE = 64  # Vertex's default (manualBatchTuningParameters.batchSize)
POLL_SECONDS = 0.25
CANCEL_GRACE_SECONDS = 5


class JobFailed(Exception):
    """The job cannot go on; the message is what the user sees."""


class BatchPredictionJobs:
    def __init__(
        self,
        store: Store,
        operations: Operations,
        models: ModelRegistry,
        jobs: CustomJobs,
        artifacts: Artifacts,
        client_env: dict[str, str],
        lifeline: Lifeline,
    ):
        self.store = store
        self.operations = operations
        self.models = models
        self.jobs = jobs  # for their slots, folders and closing flag
        self.artifacts = artifacts
        self.client_env = client_env
        self.lifeline = lifeline
        self.processes: dict[str, subprocess.Popen] = {}
        self.cancelled: set[str] = set()

    def get(self, name: str) -> dict:
        return self.store.get("batchPredictionJobs", name, "BatchPredictionJob")

    def list(self, parent: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        return [j for j in self.store.list("batchPredictionJobs", parent) if filters.matches(j, terms)]

    def log_path(self, name: str) -> Path:
        self.get(name)
        return self.jobs.folder(name) / "job.log"

    def create(self, parent: str, body: dict) -> dict:
        version = self._check(body)
        with self.store.lock:
            name = f"{parent}/batchPredictionJobs/{self.store.new_id()}"
            stamp = now()
            job = {
                **body,
                "name": name,
                "modelVersionId": version["versionId"],
                "state": "JOB_STATE_QUEUED",
                "createTime": stamp,
                "updateTime": stamp,
                "labels": body.get("labels", {}),
                "completionStats": {"successfulCount": "0", "failedCount": "0", "incompleteCount": "0"},
            }
            self.store.collection("batchPredictionJobs")[name] = job
            self.store.save()
        threading.Thread(target=self._run, args=(name, version), name=f"batch-{name[-6:]}", daemon=True).start()
        return job

    def _check(self, body: dict) -> dict:
        """The model version of a request the twin can run; InvalidArgument, Unimplemented or NotFound otherwise."""
        if not body.get("displayName"):
            raise InvalidArgument("batch_prediction_job.display_name is required.")
        if body.get("unmanagedContainerModel") or not body.get("model"):
            raise Unimplemented(
                "The twin runs batch predictions of registered models only (batch_prediction_job.model)."
            )
        inputs, output = body.get("inputConfig") or {}, body.get("outputConfig") or {}
        if not isinstance(inputs, dict) or not isinstance(output, dict):
            raise InvalidArgument("batch_prediction_job.input_config and output_config must be objects.")
        if inputs.get("bigquerySource") or output.get("bigqueryDestination"):
            raise Unimplemented("The twin has no BigQuery batch input or output: use gs:// JSON Lines.")
        if inputs.get("instancesFormat") != "jsonl" or output.get("predictionsFormat") != "jsonl":
            raise Unimplemented(
                f"The twin reads and writes JSON Lines only (instances_format and predictions_format 'jsonl'), not "
                f"{inputs.get('instancesFormat')!r} / {output.get('predictionsFormat')!r}."
            )
        uris = (inputs.get("gcsSource") or {}).get("uris") or []
        prefix = (output.get("gcsDestination") or {}).get("outputUriPrefix", "")
        if (
            not isinstance(uris, list)
            or not uris
            or not all(isinstance(u, str) and u.startswith("gs://") for u in uris)
            or not isinstance(prefix, str)
            or not prefix.startswith("gs://")
        ):
            raise InvalidArgument("input_config.gcs_source.uris and output_config.gcs_destination need gs:// URIs.")
        if body.get("generateExplanation"):
            raise Unimplemented("The twin does not explain predictions (generate_explanation).")
        size = (body.get("manualBatchTuningParameters") or {}).get("batchSize") or DEFAULT_BATCH_SIZE
        if not str(size).isdecimal() or int(size) < 1:
            raise InvalidArgument("batch_prediction_job.manual_batch_tuning_parameters.batch_size must be at least 1.")
        return self.models.resolve(body["model"])

    def cancel(self, name: str) -> dict:
        with self.store.lock:
            job = self.get(name)
            if job["state"] not in ACTIVE:
                raise FailedPrecondition(f"BatchPredictionJob {name} is already {job['state']}; nothing to cancel.")
            self.cancelled.add(name)
            self._set(job, "JOB_STATE_CANCELLING")
            process = self.processes.get(name)
        if process is not None:
            threading.Thread(target=terminate_group, args=(process, CANCEL_GRACE_SECONDS), daemon=True).start()
        return {}

    def delete(self, name: str) -> dict:
        """Deletes the job (not its results, as on Vertex)."""
        with self.store.lock:
            job = self.get(name)
            if job["state"] in ACTIVE:
                raise FailedPrecondition(f"BatchPredictionJob {name} is {job['state']}; cancel it before deleting it.")
            del self.store.collection("batchPredictionJobs")[name]
            self.store.save()
        return self.operations.completed(name, "DeleteOperationMetadata", "Empty")

    def recover(self) -> None:
        """Jobs that were active when the twin stopped did not finish: they are FAILED (results written so far stay)."""
        with self.store.lock:
            for job in self.store.collection("batchPredictionJobs").values():
                if job["state"] in ACTIVE:
                    for pid_file in self.jobs.folder(job["name"]).glob("*.pid"):
                        orphans.end_recorded(pid_file)
                    message = "The twin stopped while this job was active; run it again."
                    self._end(job, "JOB_STATE_FAILED", {"code": 13, "message": message})

    def stop_all(self) -> None:
        for process in list(self.processes.values()):
            terminate_group(process, grace=2)

    # the runner
    def _set(self, job: dict, state: str) -> None:
        with self.store.lock:
            if self.jobs.closing:
                return  # the stopping twin's recover() (at the next start) ends it
            job["state"] = state
            job["updateTime"] = now()
            if state == "JOB_STATE_RUNNING":
                job["startTime"] = job["updateTime"]
            self.store.save()

    def _end(self, job: dict, state: str, error: dict | None = None) -> None:
        with self.store.lock:
            if error is not None:
                job["error"] = error
            job["endTime"] = now()
            self._set(job, state)

    def _run(self, name: str, version: dict) -> None:
        folder = self.jobs.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        with self.jobs.slots:
            job = self.get(name)
            try:
                if name not in self.cancelled:
                    self._set(job, "JOB_STATE_PENDING")
                    command = self._prepare(job, version, folder)
                    if name not in self.cancelled:
                        self._execute(job, command, folder)
            except JobFailed as exc:
                self._end(job, "JOB_STATE_FAILED", {"code": 3, "message": str(exc)})
            except Exception as exc:
                log.exception("batch prediction job %s failed in the twin", name)
                self._end(job, "JOB_STATE_FAILED", {"code": 13, "message": f"The twin could not run the job: {exc}"})
            finally:
                with self.store.lock:
                    self.processes.pop(name, None)
                    if name in self.cancelled:
                        self.cancelled.discard(name)
                        self._end(
                            job, "JOB_STATE_CANCELLED", {"code": 1, "message": "BatchPredictionJob was cancelled."}
                        )

    def _prepare(self, job: dict, version: dict, folder: Path) -> list[str]:
        """The worker's command: the artifact fetched, the inputs found, the results directory chosen."""
        try:
            self.artifacts.fetch_tree(version["artifactUri"], folder / "model")
        except Exception as exc:
            raise JobFailed(f"Could not fetch the model artifact {version.get('artifactUri')}: {exc}") from None
        inputs = self._inputs(job["inputConfig"]["gcsSource"]["uris"])
        stamp = datetime.strptime(job["createTime"], "%Y-%m-%dT%H:%M:%S.%fZ").strftime("%Y_%m_%dT%H_%M_%S_%f")[:-3]
        prefix = job["outputConfig"]["gcsDestination"]["outputUriPrefix"].rstrip("/")
        output = f"{prefix}/prediction-{version['displayName']}-{stamp}Z"
        size = int((job.get("manualBatchTuningParameters") or {}).get("batchSize") or DEFAULT_BATCH_SIZE)
        command = [sys.executable, "-m", "edge.twin.vertex.batch_worker", "--model-dir", str(folder / "model")]
        command += [arg for uri in inputs for arg in ("--input", uri)]
        command += ["--output-dir", output, "--batch-size", str(size), "--progress", str(folder / "progress.json")]
        job["outputInfo"] = {"gcsOutputDirectory": output}
        return command

    def _inputs(self, uris: list[str]) -> list[str]:
        """The objects the source URIs name (a `*` matches within the listing of the part before it)."""
        found = []
        for uri in uris:
            bucket, path = split_uri(uri)
            head = path.split("*", 1)[0]
            folder, _, _ = head.rpartition("/")
            try:
                names = [
                    f"{folder}/{n}" if folder else n for n in self.artifacts.names_under(f"gs://{bucket}/{folder}")
                ]
            except Exception as exc:
                raise JobFailed(f"Could not list {uri}: {exc}") from None
            matches = sorted(n for n in names if fnmatch.fnmatchcase(n, path))
            if not matches:
                raise JobFailed(f"No input file at {uri}.")
            found += [f"gs://{bucket}/{n}" for n in matches]
        return found

    def _execute(self, job: dict, command: list[str], folder: Path) -> None:
        """Runs the worker, following its progress; ends the job as it ended."""
        env = {**os.environ, **self.client_env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
        with self.store.lock, (folder / "job.log").open("ab") as out:
            if job["name"] in self.cancelled or self.jobs.closing:
                return
            process = subprocess.Popen(
                supervised(command, self.lifeline.fd),
                cwd=folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self.lifeline.popen_args(),
            )
            self.processes[job["name"]] = process
            orphans.record(folder / "worker.pid", process.pid)
            self._set(job, "JOB_STATE_RUNNING")
        while process.poll() is None:
            self._progress(job, folder)
            time.sleep(POLL_SECONDS)
        (folder / "worker.pid").unlink(missing_ok=True)
        stats = self._progress(job, folder)
        if job["name"] in self.cancelled or self.jobs.closing:
            return
        if process.returncode != 0:
            tail = logs.tail(folder / "job.log", 10)
            raise JobFailed(f"The batch prediction worker exited with status {process.returncode}:\n{tail}")
        if stats["successfulCount"] == 0 and stats["failedCount"]:
            errors = f"{job['outputInfo']['gcsOutputDirectory']}/prediction.errors_stats-00000-of-00001"
            raise JobFailed(f"All {stats['failedCount']} instances failed; see {errors}.")
        self._end(job, "JOB_STATE_SUCCEEDED")

    def _progress(self, job: dict, folder: Path) -> dict:
        """The worker's counts so far, copied into the job's completionStats."""
        try:
            stats = json.loads((folder / "progress.json").read_text())
        except (OSError, ValueError):
            return {"successfulCount": 0, "failedCount": 0}
        with self.store.lock:
            job["completionStats"] = {
                "successfulCount": str(stats["successfulCount"]),
                "failedCount": str(stats["failedCount"]),
                "incompleteCount": "0",
            }
        return stats
