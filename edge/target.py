"""Where the clients point: the twin on 127.0.0.1 or Google Cloud. One code path, two targets."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

TWIN_POLL_SECONDS = 0.2
GCP_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    """A target says where the endpoints are and which credentials to use; nothing else differs."""

    name: str
    project: str
    location: str
    vertex_endpoint: str | None = None  # None: Google's regional endpoint
    env: dict[str, str] = field(default_factory=dict)  # e.g. STORAGE_EMULATOR_HOST for the twin
    poll_seconds: float = GCP_POLL_SECONDS

    @property
    def is_local(self) -> bool:
        return self.vertex_endpoint is not None

    def credentials(self):
        if self.is_local:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        return None  # application-default credentials

    def apply_env(self) -> None:
        """Points this process's clients (google-cloud-storage, gcsfs, DVC) at the target."""
        os.environ.update(self.env)

    def init_vertex(self, staging_bucket: str | None = None) -> None:
        """`aiplatform.init` for this target (imports the SDK, about 2 s)."""
        from google.cloud import aiplatform

        logging.getLogger("google.cloud.aiplatform").setLevel(logging.WARNING)  # edge prints its own progress
        self.apply_env()
        options = dict(project=self.project, location=self.location, staging_bucket=staging_bucket)
        if self.is_local:
            options.update(api_endpoint=self.vertex_endpoint, api_transport="rest", credentials=self.credentials())
        aiplatform.init(**options)

    def storage_client(self):
        from google.cloud import storage

        self.apply_env()
        if self.is_local:
            return storage.Client(
                project=self.project,
                credentials=self.credentials(),
                client_options={"api_endpoint": self.env["STORAGE_EMULATOR_HOST"]},
            )
        return storage.Client(project=self.project)


def twin_target(env: dict[str, str]) -> Target:
    """The target of a running twin, from the variables `invoke twin.env` prints."""
    return Target(
        name="twin",
        project=env["GOOGLE_CLOUD_PROJECT"],
        location=env["GOOGLE_CLOUD_REGION"],
        vertex_endpoint=env["EDGE_VERTEX_API_ENDPOINT"],
        env=dict(env),
        poll_seconds=TWIN_POLL_SECONDS,
    )


def resolve(name: str, project: str, location: str, edge_home: Path) -> Target:
    """The target called `name`; for the twin, starts it under `edge_home/twin` unless it runs."""
    if name == "gcp":
        return Target(name="gcp", project=project, location=location)
    if name != "twin":
        raise ValueError(f"unknown target {name!r}: use twin or gcp")
    from edge.twin import process

    info, _ = process.up(edge_home / "twin")
    env = {**info.env, "GOOGLE_CLOUD_PROJECT": project, "GOOGLE_CLOUD_REGION": location}
    return Target(
        name="twin",
        project=project,
        location=location,
        vertex_endpoint=info.vertex_url,
        env=env,
        poll_seconds=TWIN_POLL_SECONDS,
    )
