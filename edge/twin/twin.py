"""The twin in one process: GCS storage and the Vertex AI REST API, each a server of edge/twin/server.py."""

from __future__ import annotations

import logging
from pathlib import Path

from edge.twin.lifeline import Lifeline
from edge.twin.server import Server
from edge.twin.storage import StorageServer
from edge.twin.vertex.backend import VertexBackend
from edge.twin.vertex.routes import vertex_routes

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "edge-twin"
DEFAULT_LOCATION = "us-central1"


def client_env(
    storage_url: str, vertex_url: str, project: str = DEFAULT_PROJECT, location: str = DEFAULT_LOCATION
) -> dict[str, str]:
    """What points google-cloud-storage, gcsfs/DVC and the Vertex SDK at a twin."""
    return {
        "STORAGE_EMULATOR_HOST": storage_url,
        "EDGE_VERTEX_API_ENDPOINT": vertex_url,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "GOOGLE_CLOUD_PROJECT": project,
        "GOOGLE_CLOUD_REGION": location,
    }


class Twin:
    """Start with `with Twin(home) as twin:`; `twin.env` then points any client at it.

    The jobs and model servers it starts end by themselves when this process ends (the lifeline).
    """

    def __init__(
        self,
        home: Path,
        storage_port: int = 0,
        vertex_port: int = 0,
        project: str = DEFAULT_PROJECT,
        location: str = DEFAULT_LOCATION,
    ):
        self.home = Path(home)
        self.project = project
        self.location = location
        self.storage = StorageServer(data_dir=self.home / "storage", port=storage_port)
        self._vertex_port = vertex_port
        self.vertex: Server | None = None
        self.backend: VertexBackend | None = None
        self.lifeline: Lifeline | None = None

    @property
    def env(self) -> dict[str, str]:
        return client_env(self.storage.url, self.vertex.url, self.project, self.location)

    @property
    def ports(self) -> dict[str, int]:
        return {"storage": self.storage.port, "vertex": self.vertex.port}

    def start(self) -> Twin:
        self.home.mkdir(parents=True, exist_ok=True)
        self.lifeline = Lifeline()
        try:
            self.storage.start()
            self.vertex = Server(name="vertex", port=self._vertex_port)  # bound now: its URL is in env
            self.backend = VertexBackend(
                self.home / "vertex",
                self.storage.url,
                self.env,
                self.project,
                lifeline=self.lifeline,
                wipe_storage=self.storage.wipe,
            )
            self.vertex.on_stop.append(self.backend.servers.close_client)
            self.vertex.mount(vertex_routes(self.backend)).start()
            self.backend.start()
        except BaseException:
            self.stop()
            raise
        log.info("twin serving: storage %s, vertex %s", self.storage.url, self.vertex.url)
        return self

    def stop(self) -> None:
        if self.vertex is not None:  # first: no new job or deploy may start while the backend stops
            self.vertex.stop()
        if self.backend is not None:
            self.backend.stop()
        self.storage.stop()
        if self.lifeline is not None:
            self.lifeline.close()

    def __enter__(self) -> Twin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
