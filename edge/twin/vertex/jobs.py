"""CustomJobs run as local processes from the Python package the SDK staged in the bucket: one process per replica
of each worker pool (replicas.py: their CLUSTER_SPEC and TF_CONFIG, their logs). The job SUCCEEDS when every replica
exits 0 and FAILS when one does not (the others are ended then); a cancel ends them all."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge.twin import logs, orphans
from edge.twin.errors import FailedPrecondition, InvalidArgument
from edge.twin.lifeline import SUPERVISOR, Lifeline
from edge.twin.vertex import filters
from edge.twin.vertex.replicas import LogRelay, Replica, cluster_variables, free_ports, plan, refusal
from edge.twin.vertex.store import Operations, Store, now

__all__ = ["ACTIVE", "CustomJobs", "JobFailed", "JobWatcher", "refusal", "supervised", "terminate_group"]

log = logging.getLogger(__name__)

ACTIVE = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_CANCELLING")
MAX_PARALLEL_JOBS = 2  # jobs, not replicas: a job of 4 replicas takes one slot (batch prediction jobs share them)
CANCEL_GRACE_SECONDS = 10
LOG_TAIL_LINES = 20
POLL_SECONDS = 0.1  # how often the runner looks at its replicas


JobWatcher = Callable[[dict], None]


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
        self.processes: dict[str, list[subprocess.Popen]] = {}  # job name -> its replicas' processes
        self.cancelled: set[str] = set()
        self.watchers: dict[str, JobWatcher] = {}
        self.trials: dict[str, str] = {}  # job name -> the hyperparameter tuning trial it runs
        self.closing = False  # the twin is stopping: no job starts a process any more

    def get(self, name: str) -> dict:
        return self.store.get("customJobs", name, "CustomJob")

    def list(self, parent: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        return [j for j in self.store.list("customJobs", parent) if filters.matches(j, terms)]

    def folder(self, name: str) -> Path:
        return self.home / name.rsplit("/", 1)[-1]

    def log_path(self, name: str) -> Path:
        self.get(name)
        return self.folder(name) / "job.log"

    def metrics_file(self, name: str, replica: str = "workerpool0-0") -> Path:
        """Where a replica's cloudml-hypertune reports go (CLOUD_ML_HP_METRIC_FILE: replicas share this machine's
        /tmp, so each gets its own file; the tuning service reads the primary replica's)."""
        return self.folder(name) / "hypertune" / f"{replica}.metrics"

    def create(self, parent: str, body: dict, watcher: JobWatcher | None = None, trial: str | None = None) -> dict:
        """Queues the job; `watcher(job)`, if given, is called under the store's lock after each change of its state;
        `trial` is the id of the hyperparameter tuning trial the job runs (CLOUD_ML_TRIAL_ID, task.trial)."""
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
            if watcher is not None:
                self.watchers[name] = watcher
            if trial is not None:
                self.trials[name] = trial
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
            running = list(self.processes.get(name, []))
        for process in running:
            threading.Thread(target=terminate_group, args=(process,), daemon=True).start()
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
                    for pid_file in self.folder(job["name"]).glob("*.pid"):
                        orphans.end_recorded(pid_file)
                    self._end(
                        job, "JOB_STATE_FAILED", 13, "The twin stopped while this job was active; submit it again."
                    )

    def shutdown(self) -> None:
        with self.store.lock:
            self.closing = True
            running = [process for group in self.processes.values() for process in group]
        for process in running:
            terminate_group(process, grace=2)
        self.recover()
        self.watchers.clear()

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
            self._notify(job)

    def _notify(self, job: dict) -> None:
        terminal = job["state"] not in ACTIVE
        watcher = self.watchers.pop(job["name"], None) if terminal else self.watchers.get(job["name"])
        if watcher is None:
            return
        try:
            watcher(job)
        except Exception:
            log.exception("the watcher of job %s failed", job["name"])

    def _end(self, job: dict, state: str, code: int | None = None, message: str | None = None) -> None:
        with self.store.lock:
            if self._settled(job):
                return
            if code is not None:
                job["error"] = {"code": code, "message": message}
            job["endTime"] = now()
            self._set(job, state)

    def _run(self, name: str) -> None:
        jobdir = self.folder(name)
        jobdir.mkdir(parents=True, exist_ok=True)
        log_file = jobdir / "job.log"
        with self.slots:
            job = self.get(name)
            try:
                if name not in self.cancelled:
                    self._set(job, "JOB_STATE_PENDING")
                    launches = self._prepare(job, jobdir, log_file)
                    failure = None if name in self.cancelled else self._execute(job, launches, jobdir, log_file)
                    if name not in self.cancelled and not self.closing:  # a stopping twin's recover() ends it
                        if failure is None:
                            self._end(job, "JOB_STATE_SUCCEEDED")
                        else:
                            replica, returncode = failure
                            self._end(
                                job,
                                "JOB_STATE_FAILED",
                                3,
                                f"The replica {replica} exited with a non-zero status of {returncode}. "
                                f"Last log lines:\n{_tail(jobdir / 'replicas' / f'{replica}.log')}",
                            )
            except JobFailed as exc:
                self._end(job, "JOB_STATE_FAILED", 3, str(exc))
            except Exception as exc:
                log.exception("job %s failed in the twin", name)
                self._end(job, "JOB_STATE_FAILED", 13, f"The twin could not run the job: {exc}")
            finally:
                with self.store.lock:
                    self.processes.pop(name, None)
                    self.trials.pop(name, None)
                    if name in self.cancelled:
                        self.cancelled.discard(name)
                        self._end(job, "JOB_STATE_CANCELLED", 1, "CustomJob was cancelled.")

    def _prepare(self, job: dict, jobdir: Path, log_file: Path) -> list[tuple[Replica, list[str], dict[str, str]]]:
        """(replica, command, environment) of every replica, their packages fetched and installed."""
        pools = job["jobSpec"]["workerPoolSpecs"]
        reason = refusal(pools)
        if reason is not None:
            raise JobFailed(reason)
        replicas = plan(pools)
        installed: dict[tuple[str, ...], Path] = {}
        for replica in replicas:
            uris = tuple(replica.spec["packageUris"])
            if uris not in installed:
                installed[uris] = self._install(replica.spec, jobdir, f"package{len(installed) or ''}", log_file)
        variables = cluster_variables(replicas, free_ports(len(replicas)), job["jobSpec"], self.trials.get(job["name"]))
        launches = []
        for replica in replicas:
            spec = replica.spec
            env = self._environment(job, spec, installed[tuple(spec["packageUris"])], replica)
            env.update(variables[replica.name])
            env.update({item["name"]: item["value"] for item in spec.get("env", [])})
            launches.append((replica, [sys.executable, "-u", "-m", spec["pythonModule"], *spec.get("args", [])], env))
        return launches

    def _install(self, spec: dict, jobdir: Path, folder: str, log_file: Path) -> Path:
        """Fetches the pool's packages from the bucket and pip-installs them into jobdir/`folder`."""
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
                f"(the twin's Python and its packages stand in for {spec.get('executorImageUri')}; "
                "the package's own requirements are not installed)\n".encode()
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
                    str(jobdir / folder),
                    *archives,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if install.returncode != 0:
            raise JobFailed(f"Installing the job's package failed. Last log lines:\n{_tail(log_file)}")
        return jobdir / folder

    def _environment(self, job: dict, spec: dict, package: Path, replica: Replica) -> dict[str, str]:
        """Vertex's environment of a replica (its CLUSTER_SPEC and TF_CONFIG come from replicas.py)."""
        project, location = job["name"].split("/")[1:4:2]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIP_", "CLOUD_ML_"))}
        env.update(self.client_env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package), os.environ.get("PYTHONPATH")]))
        base = (job["jobSpec"].get("baseOutputDirectory") or {}).get("outputUriPrefix")
        if base:
            base = base.rstrip("/")
            env.update(
                AIP_MODEL_DIR=f"{base}/model/",
                AIP_CHECKPOINT_DIR=f"{base}/checkpoints/",
                AIP_TENSORBOARD_LOG_DIR=f"{base}/logs/",
            )
        trial = self.trials.get(job["name"])
        if trial is not None:
            env["CLOUD_ML_TRIAL_ID"] = trial
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
            CLOUD_ML_HP_METRIC_FILE=str(self.metrics_file(job["name"], replica.name)),
            GOOGLE_CLOUD_PROJECT=project,
        )
        return env

    def _execute(
        self, job: dict, launches: list[tuple[Replica, list[str], dict[str, str]]], jobdir: Path, log_file: Path
    ) -> tuple[str, int] | None:
        """Runs every replica; None when all exit 0, else (the first replica that failed, its status), the others
        ended then."""
        relay = LogRelay(log_file, jobdir / "replicas", prefixed=len(launches) > 1)
        started: list[tuple[Replica, subprocess.Popen]] = []
        try:
            with self.store.lock:
                if job["name"] in self.cancelled or self.closing:
                    return None
                for replica, command, env in launches:
                    process = self._start(replica, command, env, jobdir)
                    relay.follow(replica.name, process.stdout)
                    started.append((replica, process))
                    self.processes.setdefault(job["name"], []).append(process)
                self._set(job, "JOB_STATE_RUNNING")
            return _wait_all(started)
        finally:
            for _, process in started:
                process.wait()
            relay.close()
            for replica, _ in started:
                (jobdir / f"{replica.name}.pid").unlink(missing_ok=True)

    def _start(self, replica: Replica, command: list[str], env: dict[str, str], jobdir: Path) -> subprocess.Popen:
        """A replica's process, under the lifeline supervisor, in a session (process group) of its own."""
        workdir = jobdir / "workdir" / replica.name
        workdir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            supervised(command, self.lifeline.fd),
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **self.lifeline.popen_args(),
        )
        orphans.record(jobdir / f"{replica.name}.pid", process.pid)
        return process


def _wait_all(started: list[tuple[Replica, subprocess.Popen]]) -> tuple[str, int] | None:
    """Waits for every replica; at the first that exits non-zero, ends the others and returns (its name, status)."""
    while True:
        codes = [(replica, process.poll()) for replica, process in started]
        failed = next(((r, code) for r, code in codes if code not in (None, 0)), None)
        if failed is not None:
            for _, process in started:
                if process.poll() is None:
                    threading.Thread(target=terminate_group, args=(process,), daemon=True).start()
            return failed[0].name, failed[1]
        if all(code == 0 for _, code in codes):
            return None
        time.sleep(POLL_SECONDS)


def terminate_group(process: subprocess.Popen, grace: float = CANCEL_GRACE_SECONDS) -> None:
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


def supervised(command: list[str], lifeline_fd: int) -> list[str]:
    """`command` run by the lifeline supervisor: it ends the job's process group if the twin dies.
    The supervisor runs isolated (-I): the job's PYTHONPATH is the job's, not the twin's."""
    return [sys.executable, "-I", SUPERVISOR, "--lifeline", str(lifeline_fd), "--", *command]
