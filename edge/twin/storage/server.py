"""StorageServer: the storage twin (a TwinStorage backend and its routes) on the twin's HTTP layer."""

from __future__ import annotations

from pathlib import Path

from edge.twin.server import Server
from edge.twin.storage.backend import TwinStorage
from edge.twin.storage.routes import storage_routes

MAX_UPLOAD_BYTES = 5 * 1024**3  # a request's body: an upload, or one chunk of a resumable upload


class StorageServer:
    """A Google Cloud Storage JSON API twin, persisted under ``data_dir``.

    Serves on 127.0.0.1 from a background thread once started (``start()`` or ``with``);
    ``port=0`` picks a free port. ``url`` and ``port`` are valid while running. Restarting
    on the same ``data_dir`` keeps buckets, objects and generations.
    """

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self._data_dir = Path(data_dir).resolve()
        self._port = port
        self._backend: TwinStorage | None = None
        self._server: Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("StorageServer is not running")
        return self._server.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``api_endpoint`` / ``STORAGE_EMULATOR_HOST``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StorageServer:
        """Load the data dir, bind, and serve; returns self."""
        if self._server is not None:
            raise RuntimeError("StorageServer is already running")
        self._backend = TwinStorage(self._data_dir)
        server = Server(storage_routes(self._backend), name="storage", port=self._port, max_body=MAX_UPLOAD_BYTES)
        self._server = server.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; data stays on disk. Idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def wipe(self) -> None:
        """Delete every bucket and object."""
        if self._backend is None:
            raise RuntimeError("StorageServer is not running")
        with self._backend.lock:
            self._backend.wipe()

    def __enter__(self) -> StorageServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
