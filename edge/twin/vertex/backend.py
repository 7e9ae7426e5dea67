"""The twin's Vertex AI: registry, endpoints, jobs and operations over one persisted store."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from edge.twin import orphans
from edge.twin.lifeline import Lifeline
from edge.twin.vertex.artifacts import Artifacts
from edge.twin.vertex.batch import BatchPredictionJobs
from edge.twin.vertex.deployments import ModelServers
from edge.twin.vertex.endpoints import Endpoints
from edge.twin.vertex.evaluations import ModelEvaluations
from edge.twin.vertex.jobs import CustomJobs
from edge.twin.vertex.models import ModelRegistry
from edge.twin.vertex.pipelines import TrainingPipelines
from edge.twin.vertex.store import Operations, Store
from edge.twin.vertex.tuning import HyperparameterTuningJobs


class VertexBackend:
    """State lives in `home/vertex.json`; job and model-server files under `home/jobs` and `home/deployments`.

    Jobs and model servers get `lifeline`, so that they end when the twin's process does.
    """

    def __init__(
        self,
        home: Path,
        storage_url: str,
        client_env: dict[str, str],
        project: str,
        lifeline: Lifeline,
        wipe_storage: Callable[[], None] = lambda: None,
    ):
        self.home = home
        self.wipe_storage = wipe_storage
        home.mkdir(parents=True, exist_ok=True)
        self.artifacts = Artifacts(storage_url, project)
        self.store = Store(home / "vertex.json")
        self.operations = Operations(self.store)
        self.models = ModelRegistry(self.store, self.operations)
        self.evaluations = ModelEvaluations(self.store, self.models)
        self.servers = ModelServers(home / "deployments", self.artifacts.fetch_tree, lifeline)
        self.endpoints = Endpoints(self.store, self.operations, self.models, self.servers)
        self.jobs = CustomJobs(
            self.store, self.operations, home / "jobs", self.artifacts.fetch_object, client_env, lifeline
        )
        self.pipelines = TrainingPipelines(
            self.store, self.operations, self.jobs, self.models, self.artifacts.names_under
        )
        self.tuning = HyperparameterTuningJobs(self.store, self.operations, self.jobs)
        self.batch = BatchPredictionJobs(
            self.store, self.operations, self.models, self.jobs, self.artifacts, client_env, lifeline
        )

    def start(self) -> None:
        """Cleans up after the last run (its jobs FAILED, its operations ended with an error, its model
        servers ended, deploys it did not finish forgotten), then serves the deployed models again."""
        self.jobs.recover()
        self.pipelines.recover()
        self.tuning.recover()
        self.batch.recover()
        self.operations.abandon()
        for pid_file in (self.home / "deployments").glob("*/server.pid"):
            orphans.end_recorded(pid_file)
        self.models.forget_deployments_except(self.endpoints.deployed_ids())
        self.endpoints.serve_deployed()

    def stop(self) -> None:
        self.jobs.shutdown()
        self.batch.stop_all()
        self.servers.stop_all()

    def reset(self) -> dict:
        self.stop()
        self.store.reset()
        self.wipe_storage()
        for sub in ("jobs", "deployments"):
            shutil.rmtree(self.home / sub, ignore_errors=True)
        self.jobs.closing = self.servers.closing = False  # stopped for the reset, not for good
        return {}

    def status(self) -> dict:
        with self.store.lock:
            jobs = self.store.collection("customJobs").values()
            endpoints = self.store.collection("endpoints").values()
            return {
                "jobs": {state: sum(1 for j in jobs if j["state"] == state) for state in {j["state"] for j in jobs}},
                "models": len(self.store.collection("models")),
                "endpoints": [
                    {
                        "name": e["name"],
                        "displayName": e["displayName"],
                        "trafficSplit": e["trafficSplit"],
                        "deployedModels": [
                            {
                                "id": d["id"],
                                "model": f"{d['model']}@{d['modelVersionId']}",
                                "serving": d["id"] in self.servers.running(),
                            }
                            for d in e["deployedModels"]
                        ],
                    }
                    for e in endpoints
                ],
            }
