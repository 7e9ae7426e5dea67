"""Model server processes of deployed models, and predict calls forwarded to them (forwarding.py)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.twin import orphans
from edge.twin.errors import FailedPrecondition, InvalidArgument, PayloadTooLarge, Unavailable
from edge.twin.lifeline import Lifeline
from edge.twin.vertex.forwarding import ModelServerClient, PredictForwarder

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30


@dataclass
class ModelServer:
    process: object
    port: int
    forwarder: PredictForwarder
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelServers:
    """Starts, tracks and stops one model server per deployed model id."""

    def __init__(self, home: Path, fetch_artifacts: Callable[[str, Path], None], lifeline: Lifeline):
        self.home = home
        self.fetch_artifacts = fetch_artifacts
        self.lifeline = lifeline
        self.client = ModelServerClient()
        self.servers: dict[str, ModelServer] = {}
        self.lock = threading.Lock()
        self.closing = False

    def start(self, deployed_model_id: str, artifact_uri: str, image: str = "") -> None:
        """Copies the model's files under `artifact_uri` locally and starts its server; blocks until it serves.

        The framework comes from the model's serving `image`, as Vertex picks its prebuilt container (frameworks.py);
        with no image, from the artifact's files. FailedPrecondition, one line, for an image the twin cannot stand
        in for or an artifact that image's container would not find."""
        from edge.twin.vertex.serving import frameworks, start_model_server, stop_model_server

        try:
            framework = frameworks.framework_of_image(image) if image else None
        except frameworks.UnknownImage as exc:
            raise FailedPrecondition(f"Cannot serve the model: {exc}.") from None
        workdir = self.home / deployed_model_id
        orphans.end_recorded(workdir / "server.pid")
        model_dir = workdir / "model"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        model_dir.mkdir(parents=True)
        self.fetch_artifacts(artifact_uri, model_dir)
        found = [p.name for p in model_dir.iterdir()]
        problem = frameworks.missing_artifact(framework, found) if framework else None
        if framework is None and frameworks.detect_framework(model_dir) is None:
            problem = "no saved_model.pb, model.joblib, model.pkl or model.bst at its top level"
        if problem:
            served_by = f" (serving image {image})" if image else ""
            raise FailedPrecondition(f"Cannot serve the model under {artifact_uri}{served_by}: {problem}.")
        try:
            process, port = start_model_server(
                model_dir, workdir / "server.log", lifeline=self.lifeline, framework=framework
            )
        except RuntimeError as exc:
            raise FailedPrecondition(f"The model server for {artifact_uri} failed to start: {exc}") from None
        orphans.record(workdir / "server.pid", process.pid)
        self.client.prepare()
        with self.lock:
            if not self.closing:
                self.servers[deployed_model_id] = ModelServer(process, port, self._forwarder(port))
                return
        stop_model_server(process)  # the twin stopped while this one loaded

    def _forwarder(self, port: int) -> PredictForwarder:
        from yarl import URL  # aiohttp's

        return PredictForwarder(self.client, URL(f"http://127.0.0.1:{port}/predict"))

    def stop(self, deployed_model_id: str) -> None:
        """Stops a server after its in-flight requests finish (at most DRAIN_SECONDS)."""
        from edge.twin.vertex.serving import stop_model_server

        with self.lock:
            server = self.servers.pop(deployed_model_id, None)
        if server is None:
            return
        deadline = time.monotonic() + DRAIN_SECONDS
        while server.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        stop_model_server(server.process)
        (self.home / deployed_model_id / "server.pid").unlink(missing_ok=True)

    def stop_all(self) -> None:
        with self.lock:
            self.closing = True
        for deployed_model_id in list(self.servers):
            self.stop(deployed_model_id)

    def running(self) -> dict[str, int]:
        with self.lock:
            return {dm_id: server.port for dm_id, server in self.servers.items()}

    async def close_client(self) -> None:
        """Close the connections to the model servers (on the serving event loop, as it stops)."""
        await self.client.close()

    async def predict(self, deployed_model_id: str, body: bytes) -> dict:
        """The model server's predictions for a predict body; its 4xx become InvalidArgument."""
        with self.lock:
            server = self.servers.get(deployed_model_id)
            if server is None:
                raise Unavailable(f"Deployed model {deployed_model_id} is not serving yet; retry shortly.")
            with server.lock:
                server.in_flight += 1
        try:
            status, payload = await server.forwarder.forward(body)
        except OSError as exc:
            raise Unavailable(f"Deployed model {deployed_model_id} did not answer: {exc}") from None
        finally:
            with server.lock:
                server.in_flight -= 1
        message = payload.get("error", "")
        if status == 413:
            raise PayloadTooLarge(message)
        if 400 <= status < 500:
            raise InvalidArgument(message)
        if status != 200:
            raise Unavailable(f"Deployed model {deployed_model_id} failed: {message}")
        return payload
