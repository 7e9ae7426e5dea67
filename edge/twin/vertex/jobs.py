"""CustomJobs run as local processes from the Python package the SDK staged in the bucket."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from edge.twin import logs, orphans
from edge.twin.errors import FailedPrecondition, InvalidArgument
from edge.twin.lifeline import SUPERVISOR, Lifeline
from edge.twin.vertex import filters
from edge.twin.vertex.store import Operations, Store, now

log = logging.getLogger(__name__)

ACTIVE = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_CANCELLING")
MAX_PARALLEL_JOBS = 2
CANCEL_GRACE_SECONDS = 10
LOG_TAIL_LINES = 20


class JobFailed(Exception):
    """A job ended FAILED before its process ran; the message is what the user sees."""


class CustomJobs:
    def __init__(
        self,
        store: Store,
        operations: Operations,
        home: Path,
        fetch_object: Callable[[str, Path], None],
        client_env: dict[str, str],
        lifeline: Lifeline,
    ):
        self.store = store
        self.operations = operations
        self.home = home
        self.fetch_object = fetch_object
        self.client_env = client_env
        self.lifeline = lifeline
        self.slots = threading.Semaphore(MAX_PARALLEL_JOBS)
        self.processes: dict[str, subprocess.Popen] = {}
        self.cancelled: set[str] = set()
        self.closing = False  # the twin is stopping: no job starts a process any more

    def get(self, name: str) -> dict:
        return self.store.get("customJobs", name, "CustomJob")

    def list(self, parent: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        return [j for j in self.store.list("customJobs", parent) if filters.matches(j, terms)]

    def log_path(self, name: str) -> Path:
        self.get(name)
        return self.home / name.rsplit("/", 1)[-1] / "job.log"

    def create(self, parent: str, body: dict) -> dict:
        if not body.get("displayName"):
            raise InvalidArgument("custom_job.display_name is required.")
        pools = (body.get("jobSpec") or {}).get("workerPoolSpecs") or []
        if not pools or not pools[0]:
            raise InvalidArgument("custom_job.job_spec.worker_pool_specs must have at least one pool.")
        with self.store.lock:
            name = f"{parent}/customJobs/{self.store.new_id()}"
            stamp = now()
            job = {
                **body,
                "name": name,
                "state": "JOB_STATE_QUEUED",
                "createTime": stamp,
                "updateTime": stamp,
                "labels": body.get("labels", {}),
            }
            self.store.collection("customJobs")[name] = job
            self.store.save()
        threading.Thread(target=self._run, args=(name,), name=f"job-{name.rsplit('/', 1)[-1]}", daemon=True).start()
        return job

    def cancel(self, name: str) -> dict:
        with self.store.lock:
            job = self.get(name)
            if job["state"] not in ACTIVE:
                raise FailedPrecondition(f"CustomJob {name} is already {job['state']}; nothing to cancel.")
            self.cancelled.add(name)
            self._set(job, "JOB_STATE_CANCELLING")
            process = self.processes.get(name)
        if process is not None:
            threading.Thread(target=_terminate_group, args=(process,), daemon=True).start()
        return {}

    def delete(self, name: str) -> dict:
        with self.store.lock:
            job = self.get(name)
            if job["state"] in ACTIVE:
                raise FailedPrecondition(f"CustomJob {name} is {job['state']}; cancel it before deleting it.")
            del self.store.collection("customJobs")[name]
            self.store.save()
        return self.operations.completed(name, "DeleteOperationMetadata", "Empty")

    def recover(self) -> None:
        """Jobs that were active when the twin stopped did not finish: they are FAILED."""
        with self.store.lock:
            for job in self.store.collection("customJobs").values():
                if job["state"] in ACTIVE:
                    orphans.end_recorded(self.home / job["name"].rsplit("/", 1)[-1] / "job.pid")
                    self._end(
                        job, "JOB_STATE_FAILED", 13, "The twin stopped while this job was active; submit it again."
                    )

    def shutdown(self) -> None:
        with self.store.lock:
            self.closing = True
            running = list(self.processes.items())
        for _name, process in running:
            _terminate_group(process, grace=2)
        self.recover()

    # the runner
    def _settled(self, job: dict) -> bool:
        """A stopping twin's recover() has marked this job FAILED; its thread must not overwrite that."""
        return self.closing and job["state"] == "JOB_STATE_FAILED"

    def _set(self, job: dict, state: str) -> None:
        with self.store.lock:
            if self._settled(job):
                return
            job["state"] = state
            job["updateTime"] = now()
            if state == "JOB_STATE_RUNNING":
                job["startTime"] = job["updateTime"]
            self.store.save()

    def _end(self, job: dict, state: str, code: int | None = None, message: str | None = None) -> None:
        with self.store.lock:
            if self._settled(job):
                return
            if code is not None:
                job["error"] = {"code": code, "message": message}
            job["endTime"] = now()
            self._set(job, state)

    def _run(self, name: str) -> None:
        jobdir = self.home / name.rsplit("/", 1)[-1]
        jobdir.mkdir(parents=True, exist_ok=True)
        log_file = jobdir / "job.log"
        with self.slots:
            job = self.get(name)
            try:
                if name not in self.cancelled:
                    self._set(job, "JOB_STATE_PENDING")
                    command, env = self._prepare(job, jobdir, log_file)
                    returncode = None if name in self.cancelled else self._execute(job, command, env, jobdir, log_file)
                    if name not in self.cancelled:
                        if returncode == 0:
                            self._end(job, "JOB_STATE_SUCCEEDED")
                        else:
                            self._end(
                                job,
                                "JOB_STATE_FAILED",
                                3,
                                f"The replica workerpool0-0 exited with a non-zero status of {returncode}. "
                                f"Last log lines:\n{_tail(log_file)}",
                            )
            except JobFailed as exc:
                self._end(job, "JOB_STATE_FAILED", 3, str(exc))
            except Exception as exc:
                log.exception("job %s failed in the twin", name)
                self._end(job, "JOB_STATE_FAILED", 13, f"The twin could not run the job: {exc}")
            finally:
                with self.store.lock:
                    self.processes.pop(name, None)
                    if name in self.cancelled:
                        self.cancelled.discard(name)
                        self._end(job, "JOB_STATE_CANCELLED", 1, "CustomJob was cancelled.")

    def _prepare(self, job: dict, jobdir: Path, log_file: Path) -> tuple[list[str], dict[str, str]]:
        pools = [p for p in job["jobSpec"]["workerPoolSpecs"] if p]
        replicas = sum(int(p.get("replicaCount", 1)) for p in pools)
        if replicas != 1:
            raise JobFailed(
                f"The twin runs single-replica jobs; this job asks for {replicas} replicas. "
                "Use --target gcp for distributed training."
            )
        pool = pools[0]
        if "containerSpec" in pool:
            raise JobFailed(
                f"The twin cannot run container image {pool['containerSpec'].get('imageUri')!r}: "
                "there is no container engine. Submit a pythonPackageSpec job "
                "(CustomJob.from_local_script with a prebuilt Vertex image)."
            )
        spec = pool.get("pythonPackageSpec")
        if not spec or not spec.get("pythonModule") or not spec.get("packageUris"):
            raise JobFailed("The worker pool has no pythonPackageSpec with python_module and package_uris.")
        dist = jobdir / "dist"
        dist.mkdir(exist_ok=True)
        archives = []
        for uri in spec["packageUris"]:
            target = dist / uri.rsplit("/", 1)[-1]
            try:
                self.fetch_object(uri, target)
            except Exception as exc:
                raise JobFailed(f"Could not fetch package {uri}: {exc}") from None
            archives.append(str(target))
        with log_file.open("ab") as out:
            out.write(
                f"[twin] installing {', '.join(spec['packageUris'])} "
                f"(the twin's Python stands in for {spec.get('executorImageUri')})\n".encode()
            )
            out.flush()
            install = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--no-build-isolation",
                    "--disable-pip-version-check",
                    "--no-warn-script-location",
                    "--target",
                    str(jobdir / "package"),
                    *archives,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if install.returncode != 0:
            raise JobFailed(f"Installing the job's package failed. Last log lines:\n{_tail(log_file)}")
        return [sys.executable, "-u", "-m", spec["pythonModule"], *spec.get("args", [])], self._environment(
            job, spec, jobdir
        )

    def _environment(self, job: dict, spec: dict, jobdir: Path) -> dict[str, str]:
        project, location = job["name"].split("/")[1:4:2]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIP_", "CLOUD_ML_"))}
        env.update(self.client_env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(jobdir / "package"), os.environ.get("PYTHONPATH")]))
        base = (job["jobSpec"].get("baseOutputDirectory") or {}).get("outputUriPrefix")
        if base:
            base = base.rstrip("/")
            env.update(
                AIP_MODEL_DIR=f"{base}/model/",
                AIP_CHECKPOINT_DIR=f"{base}/checkpoints/",
                AIP_TENSORBOARD_LOG_DIR=f"{base}/logs/",
            )
        cluster = {
            "cluster": {"workerpool0": ["localhost:2222"]},
            "environment": "cloud",
            "task": {"type": "workerpool0", "index": 0},
        }
        env.update(
            CLOUD_ML_JOB_ID=job["name"].rsplit("/", 1)[-1],
            CLOUD_ML_JOB=json.dumps(
                {
                    "python_module": spec["pythonModule"],
                    "package_uris": spec["packageUris"],
                    "job_args": spec.get("args", []),
                }
            ),
            CLOUD_ML_PROJECT_ID=project,
            CLOUD_ML_REGION=location,
            GOOGLE_CLOUD_PROJECT=project,
            CLUSTER_SPEC=json.dumps(cluster),
            TF_CONFIG=json.dumps(cluster),
        )
        env.update({item["name"]: item["value"] for item in spec.get("env", [])})
        return env

    def _execute(self, job: dict, command: list[str], env: dict[str, str], jobdir: Path, log_file: Path) -> int:
        workdir = jobdir / "workdir"
        workdir.mkdir(exist_ok=True)
        with log_file.open("ab") as out:
            with self.store.lock:
                if job["name"] in self.cancelled or self.closing:
                    return -1
                process = subprocess.Popen(
                    _supervised(command, self.lifeline.fd),
                    cwd=workdir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    **self.lifeline.popen_args(),
                )
                self.processes[job["name"]] = process
                orphans.record(jobdir / "job.pid", process.pid)
                self._set(job, "JOB_STATE_RUNNING")
            returncode = process.wait()
        (jobdir / "job.pid").unlink(missing_ok=True)
        return returncode


def _terminate_group(process: subprocess.Popen, grace: float = CANCEL_GRACE_SECONDS) -> None:
    """SIGTERM the job's whole process group, SIGKILL it if it outlives `grace` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _tail(path: Path) -> str:
    return logs.tail(path, LOG_TAIL_LINES)


def _supervised(command: list[str], lifeline_fd: int) -> list[str]:
    """`command` run by the lifeline supervisor: it ends the job's process group if the twin dies.
    The supervisor runs isolated (-I): the job's PYTHONPATH is the job's, not the twin's."""
    return [sys.executable, "-I", SUPERVISOR, "--lifeline", str(lifeline_fd), "--", *command]
