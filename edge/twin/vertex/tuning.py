"""HyperparameterTuningJobs: trials run as CustomJobs of the twin (jobs.py), at most `parallelTrialCount` at once.

Each trial is the `trialJobSpec` with the trial's parameters appended to every pool's arguments as `--id=value`,
its `baseOutputDirectory` set to `<job's>/<trial id>` (so AIP_MODEL_DIR is `<base>/<trial id>/model/`), and
CLOUD_ML_TRIAL_ID set. When its CustomJob succeeds, the trial's measurements are the lines of the primary replica's
cloudml-hypertune file that carry the study's metric; `finalMeasurement` is the last or the best of them
(`measurementSelectionType`, Vertex's default: best). A trial whose job failed, or that reported no metric, is
INFEASIBLE with the reason. The job SUCCEEDS when its trials are done and one succeeded; it FAILS when
`maxFailedTrialCount` trials failed (when that is 0: when every trial failed). Each job has a log of what the twin
did (`/_twin/logs/<job name>`), which says when the twin stands in random search for Vertex's default algorithm.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from functools import partial
from pathlib import Path

from edge.twin.errors import FailedPrecondition, InvalidArgument, TwinError, rpc_status
from edge.twin.vertex import filters
from edge.twin.vertex.jobs import ACTIVE, CustomJobs, refusal
from edge.twin.vertex.store import Operations, Store, now
from edge.twin.vertex.study import UNSPECIFIED_ALGORITHM_NOTE, Study, argument, parse_study

log = logging.getLogger(__name__)

WAIT_SECONDS = 1.0  # the runner wakes at least this often
_CANCELLABLE = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING")


class HyperparameterTuningJobs:
    def __init__(self, store: Store, operations: Operations, jobs: CustomJobs):
        self.store = store
        self.operations = operations
        self.jobs = jobs
        self.changed = threading.Condition(store.lock)  # a trial ended, or a cancel came
        self.cancelled: set[str] = set()

    def get(self, name: str) -> dict:
        return self.store.get("hyperparameterTuningJobs", name, "HyperparameterTuningJob")

    def list(self, parent: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        return [j for j in self.store.list("hyperparameterTuningJobs", parent) if filters.matches(j, terms)]

    def log_path(self, name: str) -> Path:
        self.get(name)
        return self.jobs.folder(name) / "job.log"

    def create(self, parent: str, body: dict) -> dict:
        """Stores the job QUEUED and starts its runner; trials the twin cannot run fail it at once."""
        study = self._check(body)
        with self.store.lock:
            name = f"{parent}/hyperparameterTuningJobs/{self.store.new_id()}"
            stamp = now()
            job = {
                **body,
                "name": name,
                "state": "JOB_STATE_QUEUED",
                "createTime": stamp,
                "updateTime": stamp,
                "labels": body.get("labels", {}),
                "trials": [],
            }
            self.store.collection("hyperparameterTuningJobs")[name] = job
            reason = refusal(body["trialJobSpec"]["workerPoolSpecs"])
            if reason is not None:
                self._end(job, "JOB_STATE_FAILED", {"code": 3, "message": reason})
                return job
            self.store.save()
        threading.Thread(target=self._run, args=(name, study), name=f"tuning-{name[-6:]}", daemon=True).start()
        return job

    @staticmethod
    def _check(body: dict) -> Study:
        if not body.get("displayName"):
            raise InvalidArgument("hyperparameter_tuning_job.display_name is required.")
        for field in ("maxTrialCount", "parallelTrialCount"):
            try:
                if int(body.get(field, 0)) < 1:
                    raise ValueError
            except (TypeError, ValueError):
                raise InvalidArgument(f"hyperparameter_tuning_job.{field} must be at least 1.") from None
        try:
            if int(body.get("maxFailedTrialCount") or 0) < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidArgument("hyperparameter_tuning_job.max_failed_trial_count must be 0 or more.") from None
        if not [p for p in (body.get("trialJobSpec") or {}).get("workerPoolSpecs") or [] if p]:
            raise InvalidArgument("hyperparameter_tuning_job.trial_job_spec.worker_pool_specs must have a pool.")
        return parse_study(body.get("studySpec") or {})

    def cancel(self, name: str) -> dict:
        with self.store.lock:
            job = self.get(name)
            if job["state"] not in ACTIVE:
                raise FailedPrecondition(
                    f"HyperparameterTuningJob {name} is already {job['state']}; nothing to cancel."
                )
            if job["state"] != "JOB_STATE_CANCELLING":
                self.cancelled.add(name)
                self._set(job, "JOB_STATE_CANCELLING")
                self._stop_trials(job)
            self.changed.notify_all()
        return {}

    def delete(self, name: str) -> dict:
        """Deletes the job (not its trials' CustomJobs)."""
        with self.store.lock:
            job = self.get(name)
            if job["state"] in ACTIVE:
                raise FailedPrecondition(f"HyperparameterTuningJob {name} is {job['state']}; cancel it first.")
            del self.store.collection("hyperparameterTuningJobs")[name]
            self.store.save()
        return self.operations.completed(name, "DeleteOperationMetadata", "Empty")

    def recover(self) -> None:
        """Jobs that were active when the twin stopped did not finish: FAILED, their active trials INFEASIBLE."""
        message = "The twin stopped while this job was active; run it again."
        with self.store.lock:
            for job in self.store.collection("hyperparameterTuningJobs").values():
                if job["state"] in ACTIVE:
                    for trial in job["trials"]:
                        if trial["state"] == "ACTIVE":
                            trial.update(state="INFEASIBLE", infeasibleReason=message, endTime=now())
                    self._end(job, "JOB_STATE_FAILED", {"code": 13, "message": message})

    # the runner
    def _set(self, job: dict, state: str) -> None:
        with self.store.lock:
            if self.jobs.closing:
                return  # the stopping twin's recover() (at the next start) ends it
            job["state"] = state
            job["updateTime"] = now()
            if state == "JOB_STATE_RUNNING" and "startTime" not in job:
                job["startTime"] = job["updateTime"]
            self.store.save()

    def _end(self, job: dict, state: str, error: dict | None = None) -> None:
        with self.store.lock:
            if error is not None:
                job["error"] = error
            job["endTime"] = now()
            self._set(job, state)

    def _note(self, name: str, line: str) -> None:
        """A line of the job's log (what `invoke tune` shows on the twin)."""
        path = self.jobs.folder(name) / "job.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(f"[twin] {line}\n")

    def _run(self, name: str, study: Study) -> None:
        job = self.get(name)
        try:
            if study.algorithm == "ALGORITHM_UNSPECIFIED":
                self._note(name, UNSPECIFIED_ALGORITHM_NOTE)
            self._set(job, "JOB_STATE_PENDING")
            self._trials(job, study)
            self._finish(job)
        except TwinError as exc:
            self._end(job, "JOB_STATE_FAILED", rpc_status(exc))
        except Exception as exc:
            log.exception("hyperparameter tuning job %s failed in the twin", name)
            self._end(job, "JOB_STATE_FAILED", {"code": 13, "message": f"The twin could not run the job: {exc}"})
        finally:
            self.cancelled.discard(name)

    def _trials(self, job: dict, study: Study) -> None:
        """Starts trials while there is room and a reason to, until none is active."""
        name = job["name"]
        suggestions = study.suggestions(seed=int(name.rsplit("/", 1)[-1]))
        most, parallel = int(job["maxTrialCount"]), int(job["parallelTrialCount"])
        with self.changed:
            while not self.jobs.closing:
                active = [t for t in job["trials"] if t["state"] == "ACTIVE"]
                stopping = name in self.cancelled or self._too_many_failed(job)
                if stopping and active:
                    self._stop_trials(job)
                if not stopping and len(job["trials"]) < most and len(active) < parallel:
                    parameters = next(suggestions, None)
                    if parameters is None:  # the grid is walked: no more trials
                        most = len(job["trials"])
                        self._note(name, f"the grid has {most} points: no more trials")
                        continue
                    self._start_trial(job, study, parameters)
                    continue
                if not active:
                    return
                self.changed.wait(WAIT_SECONDS)

    def _too_many_failed(self, job: dict) -> bool:
        limit = int(job.get("maxFailedTrialCount") or 0)
        failed = sum(t["state"] == "INFEASIBLE" for t in job["trials"])
        return bool(limit) and failed >= limit

    def _start_trial(self, job: dict, study: Study, parameters: dict) -> None:
        trial_id = str(len(job["trials"]) + 1)
        spec = copy.deepcopy(job["trialJobSpec"])
        arguments = [f"--{key}={argument(value)}" for key, value in parameters.items()]
        for pool in filter(None, spec["workerPoolSpecs"]):
            package = pool.get("pythonPackageSpec")
            package["args"] = [*package.get("args", []), *arguments]
        base = (spec.get("baseOutputDirectory") or {}).get("outputUriPrefix")
        if base:
            spec["baseOutputDirectory"] = {"outputUriPrefix": f"{base.rstrip('/')}/{trial_id}"}
        trial = {
            "id": trial_id,
            "state": "ACTIVE",
            "parameters": [{"parameterId": key, "value": value} for key, value in parameters.items()],
            "startTime": now(),
        }
        job["trials"].append(trial)
        custom = self.jobs.create(
            job["name"].split("/hyperparameterTuningJobs/")[0],
            {"displayName": f"{job['displayName']}-trial-{trial_id}", "jobSpec": spec, "labels": job["labels"]},
            watcher=partial(self._trial_changed, job["name"], trial_id, study),
            trial=trial_id,
        )
        trial["customJob"] = custom["name"]
        if job["state"] == "JOB_STATE_PENDING":
            self._set(job, "JOB_STATE_RUNNING")
        self.store.save()
        self._note(job["name"], f"trial {trial_id}: {custom['name']} {' '.join(arguments)}")

    def _stop_trials(self, job: dict) -> None:
        for trial in job["trials"]:
            custom = trial.get("customJob")
            if trial["state"] == "ACTIVE" and custom and self.jobs.get(custom)["state"] in _CANCELLABLE:
                self.jobs.cancel(custom)

    def _trial_changed(self, name: str, trial_id: str, study: Study, custom: dict) -> None:
        """A trial's CustomJob changed state (called by the job runner, under the store's lock)."""
        if custom["state"] in ACTIVE:
            return
        job = self.store.collection("hyperparameterTuningJobs").get(name)
        trial = next((t for t in job["trials"] if t["id"] == trial_id), None) if job else None
        if trial is None or trial["state"] != "ACTIVE":
            return
        reason = None
        if custom["state"] == "JOB_STATE_SUCCEEDED":
            measurements = self._measurements(custom["name"], study.metric)
            if measurements:
                pick = measurements[-1] if study.selection == "LAST_MEASUREMENT" else self._best(measurements, study)
                trial.update(measurements=measurements, finalMeasurement=pick, state="SUCCEEDED")
            else:
                reason = f"The trial reported no {study.metric!r} (cloudml-hypertune's metric file has none)."
        else:
            lines = [line for line in ((custom.get("error") or {}).get("message") or "").splitlines() if line.strip()]
            said = f"{lines[0]} ... {lines[-1].strip()}" if len(lines) > 1 else "".join(lines) or custom["state"]
            reason = f"The trial's job {custom['name']} ended {custom['state']}: {said}"
        if reason is not None:
            trial.update(state="INFEASIBLE", infeasibleReason=reason)
        trial["endTime"] = now()
        self.store.save()
        self.changed.notify_all()

    def _measurements(self, custom_job: str, metric: str) -> list[dict]:
        """The measurements of `metric` in the primary replica's cloudml-hypertune file, in order."""
        try:
            lines = self.jobs.metrics_file(custom_job).read_text().splitlines()
        except OSError:
            return []
        found = []
        for line in lines:
            try:
                entry = json.loads(line)
                value = float(entry[metric])
            except (ValueError, KeyError, TypeError):
                continue
            step = str(int(float(entry.get("global_step") or 0)))
            found.append({"stepCount": step, "metrics": [{"metricId": metric, "value": value}]})
        return found

    @staticmethod
    def _best(measurements: list[dict], study: Study) -> dict:
        best = measurements[0]
        for candidate in measurements[1:]:
            if study.better(candidate["metrics"][0]["value"], best["metrics"][0]["value"]):
                best = candidate
        return best

    def _finish(self, job: dict) -> None:
        trials = job["trials"]
        failed = [t for t in trials if t["state"] == "INFEASIBLE"]
        if job["name"] in self.cancelled:
            self._end(job, "JOB_STATE_CANCELLED", {"code": 1, "message": "HyperparameterTuningJob was cancelled."})
        elif self._too_many_failed(job) or trials and len(failed) == len(trials):
            last = failed[-1].get("infeasibleReason", "") if failed else ""
            message = f"{len(failed)} of {len(trials)} trials failed (max_failed_trial_count " + (
                f"{job.get('maxFailedTrialCount') or 0}). Last failure: {last}"
            )
            self._end(job, "JOB_STATE_FAILED", {"code": 9, "message": message})
        else:
            self._end(job, "JOB_STATE_SUCCEEDED")
