"""Where the clients point: the twin on 127.0.0.1 or Google Cloud. The one place where the two differ.

Toolkit modules ask a `Target` (endpoints, credentials, job logs, DVC remote options, polling pace,
who owns endpoints, what to provision) and never test which target it is: a new capability adds a
method to both classes here, not an `if` elsewhere.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.project import Project

log = logging.getLogger(__name__)

TWIN_POLL_SECONDS = 0.2
GCP_POLL_SECONDS = 10.0
WATCH_SECONDS = 0.5  # how often a command checks that the twin it talks to still runs


class TwinStopped(EdgeError):
    """The twin died while a command talked to it."""


class Target:
    """What both targets answer; the subclasses hold every difference."""

    name = ""
    poll_seconds = GCP_POLL_SECONDS

    def __init__(self, project: str, location: str, env: dict[str, str] | None = None):
        self.project = project
        self.location = location
        self.env = dict(env or {})  # variables this process's clients and its children (DVC, gcsfs) need

    def credentials(self):
        return None  # application-default credentials

    def vertex_options(self) -> dict:
        """Extra `aiplatform.init` options."""
        return {}

    def storage_options(self) -> dict:
        """Extra `storage.Client` options."""
        return {}

    def apply_env(self) -> None:
        """Points this process's clients (google-cloud-storage, gcsfs, DVC) at the target."""
        os.environ.update(self.env)

    def init_vertex(self, staging_bucket: str | None = None) -> None:
        """`aiplatform.init` for this target (imports the SDK, about 2 s)."""
        from google.cloud import aiplatform

        self.apply_env()
        aiplatform.init(
            project=self.project, location=self.location, staging_bucket=staging_bucket, **self.vertex_options()
        )
        quiet_sdk_logs()

    def model_service_client(self):
        """The GAPIC `ModelServiceClient` the Vertex SDK ships (model evaluations have no high-level SDK call),
        pointed where `init_vertex` points the SDK: Google's regional endpoint, or the options of `vertex_options`."""
        from google.api_core.client_options import ClientOptions
        from google.cloud.aiplatform_v1 import ModelServiceClient

        options = self.vertex_options()
        endpoint = options.get("api_endpoint", f"{self.location}-aiplatform.googleapis.com")
        return ModelServiceClient(
            credentials=options.get("credentials", self.credentials()),
            transport=options.get("api_transport", "grpc"),
            client_options=ClientOptions(api_endpoint=endpoint),
        )

    def endpoint_service_client(self):
        """The GAPIC `EndpointServiceClient` the Vertex SDK ships, pointed as `model_service_client` is: reading an
        endpoint this way spares `invoke monitor` the SDK's import (seconds), for the same REST or gRPC calls."""
        from google.api_core.client_options import ClientOptions
        from google.cloud.aiplatform_v1 import EndpointServiceClient

        options = self.vertex_options()
        endpoint = options.get("api_endpoint", f"{self.location}-aiplatform.googleapis.com")
        return EndpointServiceClient(
            credentials=options.get("credentials", self.credentials()),
            transport=options.get("api_transport", "grpc"),
            client_options=ClientOptions(api_endpoint=endpoint),
        )

    def storage_client(self):
        from google.cloud import storage

        self.apply_env()
        return storage.Client(project=self.project, **self.storage_options())

    def bigquery_options(self) -> dict:
        """Extra `bigquery.Client` options."""
        return {}

    def bigquery_client(self):
        """google-cloud-bigquery's client for this target (the request logs `invoke monitor` reads)."""
        from google.cloud import bigquery

        return bigquery.Client(project=self.project, **self.bigquery_options())

    def dvc_remote_options(self) -> dict[str, str]:
        """Options of the DVC remote for this target, kept in .dvc/config.local (never in git)."""
        return {}

    def read_job_log(self, job_name: str, offset: int) -> tuple[str, int]:
        """The job's log from byte `offset` and the offset to read next ("" where logs are not streamed)."""
        return "", offset

    def job_log_hint(self, job_name: str) -> str | None:
        """Where to read a job's log when it is not streamed."""
        return None

    def predict_url(self, endpoint_name: str) -> str:
        return f"https://{self.location}-aiplatform.googleapis.com/v1/{endpoint_name}:predict"

    def release_endpoint(self, endpoint) -> str:
        """Undeploys everything from an endpoint edge is done with (destroy); returns what was done."""
        endpoint.undeploy_all()
        return f"undeployed everything from {endpoint.resource_name}"

    def provision(self, project: Project, yes: bool) -> list[str]:
        """`invoke init`: what must exist before data, training and deploys (bucket, state, infrastructure)."""
        raise NotImplementedError

    def teardown(self, project: Project) -> list[str]:
        """`invoke destroy`, after the models and endpoints are gone and before the bucket is emptied."""
        return []

    def dashboard(self, project: Project) -> str:
        """How to look at experiment runs (they are in the bucket on both targets)."""
        raise NotImplementedError

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Notices, within seconds, a target that stops answering for good (the twin dying)."""
        yield

    def lost(self) -> str | None:
        """Why the target is gone for good (one line, checked now), or None while it is there."""
        return None


class GcpTarget(Target):
    """Google Cloud itself: application-default credentials, Google's endpoints, Terraform's infrastructure."""

    name = "gcp"

    def job_log_hint(self, job_name: str) -> str:
        job_id = job_name.rsplit("/", 1)[-1]
        page = "batch-predictions" if "/batchPredictionJobs/" in job_name else "training"  # tuning jobs: training
        return (
            f"job logs are in Cloud Logging: https://console.cloud.google.com/vertex-ai/locations/"
            f"{self.location}/{page}/{job_id}?project={self.project}"
        )

    def provision(self, project: Project, yes: bool) -> list[str]:
        from edge import infra

        project.state.remember_infra(infra.init_gcp(project, yes=yes))
        return ["infrastructure applied (Terraform), its outputs kept in the state"]

    def teardown(self, project: Project) -> list[str]:
        from dataclasses import replace

        from edge import infra

        infra.destroy(replace(project.config, target=self.name), yes=True)
        return ["terraform destroy done (the bucket is kept by Terraform and emptied below)"]

    def dashboard(self, project: Project) -> str:
        from edge import infra

        instructions = infra.dashboard_instructions(project.config, project.state.read().infra.get("tracker"))
        return (
            f"{instructions}\nOmniboard shows the runs of gs://{project.config.bucket}/experiments/, copied by the "
            "tracker VM's importer every minute; `invoke experiments.report` draws them without Omniboard"
        )


class TwinTarget(Target):
    """The twin on 127.0.0.1: anonymous credentials, its own endpoints, no Terraform."""

    name = "twin"
    poll_seconds = TWIN_POLL_SECONDS

    def __init__(self, project: str, location: str, env: dict[str, str], pid: int | None = None):
        super().__init__(project, location, env)
        self.vertex_endpoint = env["EDGE_VERTEX_API_ENDPOINT"]
        self.storage_endpoint = env["STORAGE_EMULATOR_HOST"]
        self.pid = pid  # the twin's process; None for a twin inside this process (tests)
        self._lost: str | None = None

    def credentials(self):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()

    def vertex_options(self) -> dict:
        return {"api_endpoint": self.vertex_endpoint, "api_transport": "rest", "credentials": self.credentials()}

    def storage_options(self) -> dict:
        return {"credentials": self.credentials(), "client_options": {"api_endpoint": self.storage_endpoint}}

    def dvc_remote_options(self) -> dict[str, str]:
        return {"endpointurl": self.storage_endpoint, "allow_anonymous_login": "true"}

    def bigquery_options(self) -> dict:
        endpoint = self.env.get("EDGE_BIGQUERY_API_ENDPOINT")
        if not endpoint:
            raise EdgeError(
                "the running twin has no BigQuery (an older edge started it): restart it with "
                "`invoke twin.down` then `invoke twin.up`"
            )
        return {"credentials": self.credentials(), "client_options": {"api_endpoint": endpoint}}

    def read_job_log(self, job_name: str, offset: int) -> tuple[str, int]:
        import requests

        chunk = requests.get(
            f"{self.vertex_endpoint}/_twin/logs/{job_name}", params={"offset": offset}, timeout=30
        ).json()
        return chunk["text"], chunk["nextOffset"]

    def predict_url(self, endpoint_name: str) -> str:
        return f"{self.vertex_endpoint}/v1/{endpoint_name}:predict"

    def release_endpoint(self, endpoint) -> str:
        endpoint.undeploy_all()
        endpoint.delete()  # edge made it; on gcp the endpoint is Terraform's
        return f"deleted endpoint {endpoint.resource_name}"

    def provision(self, project: Project, yes: bool) -> list[str]:
        done = []
        client = self.storage_client()
        if client.lookup_bucket(project.config.bucket) is None:
            client.create_bucket(project.config.bucket, location=project.config.region)
            done.append(f"created bucket gs://{project.config.bucket}")
        return done

    def dashboard(self, project: Project) -> str:
        return (
            "Omniboard needs a MongoDB server, which cannot run offline here: `invoke experiments` lists the runs "
            "of the bucket and `invoke experiments.report` draws them in one HTML page"
        )

    @contextmanager
    def watch(self) -> Iterator[None]:
        """While the block runs, a thread checks the twin's process; if it dies, the main thread gets an
        interrupt (KeyboardInterrupt) at once instead of waiting out the clients' retries, and `lost()` says why."""
        if self.pid is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        done = threading.Event()
        thread = threading.Thread(
            target=self._watch, args=(done, threading.main_thread().ident), name="twin-watch", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _watch(self, done: threading.Event, main_thread: int) -> None:
        """Once the twin is gone, interrupts the main thread until it leaves the watched block (clean-up code
        that would talk to the dead twin is cut short too)."""
        while not done.wait(WATCH_SECONDS):
            if self.lost():
                signal.pthread_kill(main_thread, signal.SIGINT)

    def lost(self) -> str | None:
        if self._lost is None and self.pid is not None:
            import psutil

            try:
                running = psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                running = False
            if not running:
                self._lost = f"the twin (pid {self.pid}) stopped while this command ran"
        return self._lost


def quiet_sdk_logs() -> None:
    """The Vertex SDK logs every create at INFO on stdout ("To use this Endpoint in another session..."):
    edge prints its own progress, so its loggers only pass warnings."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("google.cloud.aiplatform"):
            logging.getLogger(name).setLevel(logging.WARNING)


def twin_target(env: dict[str, str], pid: int | None = None) -> TwinTarget:
    """The target of a running twin, from the variables `invoke twin.env` prints."""
    return TwinTarget(env["GOOGLE_CLOUD_PROJECT"], env["GOOGLE_CLOUD_REGION"], env, pid)


def resolve(name: str, project: str, location: str, edge_home: Path) -> Target:
    """The target called `name`; for the twin, starts it under `edge_home/twin` unless it runs."""
    if name == "gcp":
        return GcpTarget(project, location)
    if name != "twin":
        from edge.config import ConfigError

        raise ConfigError(f"unknown target {name!r}: use twin or gcp")
    from edge.twin import process

    info, _ = process.up(edge_home / "twin")
    env = {**info.env, "GOOGLE_CLOUD_PROJECT": project, "GOOGLE_CLOUD_REGION": location}
    return TwinTarget(project, location, env, info.pid)
