"""The twin in one process: GCS storage, the Vertex AI REST API and BigQuery, each a server of
edge/twin/server.py. Endpoints with request-response logging on write their rows to the twin's BigQuery."""

from __future__ import annotations

import logging
from pathlib import Path

from edge.twin.lifeline import Lifeline
from edge.twin.server import Server
from edge.twin.storage import StorageServer
from edge.twin.vertex.backend import VertexBackend
from edge.twin.vertex.request_log import RequestLog
from edge.twin.vertex.routes import vertex_routes

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "edge-twin"
DEFAULT_LOCATION = "us-central1"


def client_env(
    storage_url: str,
    vertex_url: str,
    project: str = DEFAULT_PROJECT,
    location: str = DEFAULT_LOCATION,
    bigquery_url: str | None = None,
) -> dict[str, str]:
    """What points google-cloud-storage, gcsfs/DVC, the Vertex SDK and google-cloud-bigquery at a twin
    (google-cloud-bigquery reads BIGQUERY_EMULATOR_HOST itself; edge reads EDGE_BIGQUERY_API_ENDPOINT)."""
    env = {
        "STORAGE_EMULATOR_HOST": storage_url,
        "EDGE_VERTEX_API_ENDPOINT": vertex_url,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "GOOGLE_CLOUD_PROJECT": project,
        "GOOGLE_CLOUD_REGION": location,
    }
    if bigquery_url:
        env["EDGE_BIGQUERY_API_ENDPOINT"] = env["BIGQUERY_EMULATOR_HOST"] = bigquery_url
    return env


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
        bigquery_port: int = 0,
    ):
        self.home = Path(home)
        self.project = project
        self.location = location
        self.storage = StorageServer(data_dir=self.home / "storage", port=storage_port)
        self._vertex_port = vertex_port
        self._bigquery_port = bigquery_port
        self.vertex: Server | None = None
        self.backend: VertexBackend | None = None
        self.bigquery: Server | None = None
        self.bigquery_backend = None  # edge.twin.bigquery.BigQueryBackend, once started
        self.request_log: RequestLog | None = None
        self.lifeline: Lifeline | None = None

    @property
    def env(self) -> dict[str, str]:
        bigquery_url = self.bigquery.url if self.bigquery is not None else None
        return client_env(self.storage.url, self.vertex.url, self.project, self.location, bigquery_url)

    @property
    def ports(self) -> dict[str, int]:
        return {"storage": self.storage.port, "vertex": self.vertex.port, "bigquery": self.bigquery.port}

    def _start_bigquery(self) -> None:
        """The BigQuery twin (DuckDB under home/bigquery) and the request log that writes into it."""
        from edge.twin.bigquery import REQUEST_RESPONSE_LOGGING_FIELDS, BigQueryBackend, bigquery_routes

        self.bigquery_backend = BigQueryBackend(self.home / "bigquery").start()
        self.bigquery = Server(bigquery_routes(self.bigquery_backend), name="bigquery", port=self._bigquery_port)
        self.bigquery.start()
        self.request_log = RequestLog(self.bigquery_backend, REQUEST_RESPONSE_LOGGING_FIELDS).start()

    def _wipe(self) -> None:
        """What a reset empties besides the Vertex state: buckets, and BigQuery's datasets."""
        self.storage.wipe()
        if self.bigquery_backend is not None:
            self.bigquery_backend.reset()

    def start(self) -> Twin:
        self.home.mkdir(parents=True, exist_ok=True)
        self.lifeline = Lifeline()
        try:
            self.storage.start()
            self._start_bigquery()
            self.vertex = Server(name="vertex", port=self._vertex_port)  # bound now: its URL is in env
            self.backend = VertexBackend(
                self.home / "vertex",
                self.storage.url,
                self.env,
                self.project,
                lifeline=self.lifeline,
                wipe_storage=self._wipe,
            )
            self.backend.endpoints.log_requests_to(self.request_log)
            self.vertex.on_stop.append(self.backend.servers.close_client)
            self.vertex.mount(vertex_routes(self.backend)).start()
            self.backend.start()
        except BaseException:
            self.stop()
            raise
        log.info(
            "twin serving: storage %s, vertex %s, bigquery %s", self.storage.url, self.vertex.url, self.bigquery.url
        )
        return self

    def stop(self) -> None:
        if self.vertex is not None:  # first: no new job or deploy may start while the backend stops
            self.vertex.stop()
        if self.backend is not None:
            self.backend.stop()
        if self.request_log is not None:  # what predict queued goes to BigQuery before it stops
            self.request_log.stop()
        if self.bigquery is not None:
            self.bigquery.stop()
        if self.bigquery_backend is not None:  # after its server; its stop writes the buffered rows
            self.bigquery_backend.stop()
        self.storage.stop()
        if self.lifeline is not None:
            self.lifeline.close()

    def __enter__(self) -> Twin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
