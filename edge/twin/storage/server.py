"""StorageServer: gcp-storage-emulator's JSON API handlers served by the twin.

Requests are served on threads; each handler runs with its precondition checks under
the backend's lock, with the request body read before the lock is taken and the
response written after it is released. Errors carry GCS's JSON error body.
Twin-only paths live under ``/_twin/``: ``GET /_twin/health`` -> ``{"status": "ok"}``.
"""

import logging
import re
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator import settings
from gcp_storage_emulator.exceptions import BadRequest, Conflict, NotFound
from gcp_storage_emulator.handlers import objects

from edge.twin.http import refusal
from edge.twin.storage.backend import TwinStorage
from edge.twin.storage.preconditions import (
    MESSAGE,
    NotModified,
    PreconditionFailed,
    Preconditions,
)

logger = logging.getLogger(__name__)

HEALTH_PATH = "/_twin/health"

# The emulator's own "/" and "GET /wipe" (wipes everything) are left out.
_ROUTES = tuple(
    (re.compile(regex), handlers) for regex, handlers in emulator.HANDLERS if regex not in (r"^/$", r"^/wipe$")
)
_READS = (objects.get, objects.download)
_COPIES = (objects.copy, objects.rewrite)
_UPLOAD_PATH = re.compile(rf"^(?:{re.escape(settings.API_ENDPOINT)})?/b/[^/]+/o$")


class _Response(emulator.Response):
    """The emulator's Response; a JSON body's mediaLinks point at ``base_url``."""

    def __init__(self, request_handler, base_url: str = "") -> None:
        super().__init__(request_handler)
        self._base_url = base_url

    @property
    def has_body(self) -> bool:
        return bool(self._content)

    def json(self, obj):
        super().json(_relinked(obj, self._base_url) if self._base_url else obj)


def _relinked(value, base_url: str):
    """A copy of value whose mediaLinks use base_url (stored ones name the port of their day)."""
    if isinstance(value, list):
        return [_relinked(item, base_url) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _relinked(item, base_url) for key, item in value.items()}
    if isinstance(out.get("mediaLink"), str):
        link = urlsplit(out["mediaLink"])
        out["mediaLink"] = urlunsplit(urlsplit(base_url)[:2] + link[2:])
    return out


class _HttpError(Exception):
    """A failure known only by its HTTP status (a handler answered without a body)."""

    def __init__(self, status: HTTPStatus, message: str = "") -> None:
        super().__init__(message or status.phrase)
        self.status = status


_STATUS_OF = {
    PreconditionFailed: HTTPStatus.PRECONDITION_FAILED,
    NotFound: HTTPStatus.NOT_FOUND,
    BadRequest: HTTPStatus.BAD_REQUEST,
    Conflict: HTTPStatus.CONFLICT,
}
_REASON_OF = {
    HTTPStatus.BAD_REQUEST: "invalid",
    HTTPStatus.NOT_FOUND: "notFound",
    HTTPStatus.CONFLICT: "conflict",
    HTTPStatus.PRECONDITION_FAILED: "conditionNotMet",
    HTTPStatus.NOT_IMPLEMENTED: "notImplemented",
}


def _find_handler(request: emulator.Request) -> Callable:
    """The emulator handler for the request; sets the request's path parameters."""
    for pattern, handlers in _ROUTES:
        match = pattern.fullmatch(request.path)
        if match is None:
            continue
        request.set_match(match)
        handler = handlers.get(request.method)
        # Like the emulator's Router: uploads POSTed without the /upload prefix.
        if (
            handler is None
            and request.method == "POST"
            and request.query.get("uploadType")
            and _UPLOAD_PATH.match(request.path)
        ):
            handler = objects.insert
        if handler is not None:
            return handler
        break
    raise _HttpError(
        HTTPStatus.NOT_IMPLEMENTED,
        f"Not implemented by the twin: {request.method} {request.path}",
    )


def _check_read_or_source(handler: Callable, request, backend: TwinStorage) -> None:
    """Preconditions a write guard cannot see: those of reads and of copy sources."""
    params = request.params
    if handler in _READS:
        conditions, read = Preconditions.from_query(request.query), True
    elif handler in _COPIES:
        conditions, read = Preconditions.from_query(request.query, source=True), False
    else:
        return
    obj = backend.live_object(params["bucket_name"], params["object_id"])
    if obj is not None:
        conditions.check(obj, read=read)


def _not_found_message(request, backend: TwinStorage) -> str:
    params = request.params or {}
    bucket_name = params.get("bucket_name")
    if bucket_name and bucket_name not in backend.buckets:
        return "The specified bucket does not exist."
    if params.get("object_id"):
        return f"No such object: {bucket_name}/{params['object_id']}"
    return "Not Found"


def _error_response(request_handler, exc: Exception, request) -> _Response:
    """The response for a failed request: GCS's error body (the only place one is built)."""
    response = _Response(request_handler)
    if isinstance(exc, NotModified):
        response.status = HTTPStatus.NOT_MODIFIED
        return response
    if isinstance(exc, _HttpError):
        status = exc.status
    else:
        status = _STATUS_OF.get(type(exc), HTTPStatus.INTERNAL_SERVER_ERROR)
    message = str(exc)
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.exception("storage twin failed on %s %s", request.method, request.path)
        message = f"Internal error in the storage twin: {exc!r}"
    elif status == HTTPStatus.NOT_FOUND and not isinstance(exc, _HttpError):
        message = _not_found_message(request, request_handler.server.backend)
    elif status == HTTPStatus.PRECONDITION_FAILED:
        message = MESSAGE
    reason = _REASON_OF.get(status, "backendError")
    error = {"domain": "global", "reason": reason, "message": message}
    if status == HTTPStatus.PRECONDITION_FAILED:
        error.update(locationType="header", location="If-Match", debugInfo=str(exc))
    response.status = status
    response.json({"error": {"code": status.value, "message": message, "errors": [error]}})
    return response


def _read_body(request: emulator.Request, rfile) -> None:
    """Read and parse the request body now (outside the lock); BadRequest if unparsable."""
    try:
        _ = request.data
    except ValueError as exc:
        raise BadRequest(f"Invalid request body: {exc}") from None
    if (request.get_header("Transfer-Encoding") or "").lower() == "chunked":
        # The emulator stops at the last chunk; the trailer section ends the message.
        while rfile.readline() not in (b"\r\n", b"\n", b""):
            pass


class _RequestHandler(BaseHTTPRequestHandler):
    """One connection (HTTP/1.1 keep-alive); every request is read in full before routing."""

    server: "_HTTPServer"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self):
        self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_DELETE(self):
        self._serve("DELETE")

    def log_message(self, format, *args):
        logger.debug(format, *args)

    def _serve(self, method: str) -> None:
        reason = refusal(self.headers, self.server.server_address[1])
        if reason:
            self.close_connection = True
            self.send_error(403, reason)
            return
        request = emulator.Request(self, self.headers.get("x-http-method-override") or method)
        request.set_match(None)
        body_read = False
        try:
            _read_body(request, self.rfile)
            body_read = True
            response = self._dispatch(request)
        except Exception as exc:
            response = _error_response(self, exc, request)
            if not body_read:  # the rest of the stream cannot be trusted
                response["Connection"] = "close"
        response.close()

    def _dispatch(self, request: emulator.Request) -> _Response:
        response = _Response(self, request.base_url)
        if request.path == HEALTH_PATH and request.method == "GET":
            response.json({"status": "ok"})
            return response
        handler = _find_handler(request)
        backend = self.server.backend
        with backend.lock:
            _check_read_or_source(handler, request, backend)
            with backend.guarded(Preconditions.from_query(request.query)):
                handler(request, response, backend)
            if response.status >= 400 and not response.has_body:
                if response.status == HTTPStatus.NOT_FOUND:
                    raise NotFound()
                raise _HttpError(HTTPStatus(response.status))
            if handler in _READS and response.status < 300:
                _add_generation_headers(handler, request, response, backend)
        return response


def _add_generation_headers(handler, request, response, backend: TwinStorage) -> None:
    """Media downloads carry the generation headers clients read (as GCS sends them)."""
    if handler is not objects.download and request.query.get("alt") != ["media"]:
        return
    params = request.params
    obj = backend.live_object(params["bucket_name"], params["object_id"])
    if obj is not None:
        response["X-Goog-Generation"] = obj["generation"]
        response["X-Goog-Metageneration"] = obj["metageneration"]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, backend: TwinStorage) -> None:
        self.backend = backend
        self.connections: set = set()
        super().__init__(address, _RequestHandler)

    def handle_error(self, request, client_address):
        logger.debug("connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Hang up on open keep-alive connections (their threads then end)."""
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class StorageServer:
    """A Google Cloud Storage JSON API twin, persisted under ``data_dir``.

    Serves from a background thread of the calling process once started (``start()``
    or ``with``); ``port=0`` picks a free port. ``url`` and ``port`` are valid while
    running. Restarting on the same ``data_dir`` keeps buckets, objects and generations.
    """

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self._data_dir = Path(data_dir).resolve()
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        if self._httpd is None:
            raise RuntimeError("StorageServer is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, for ``api_endpoint`` / ``STORAGE_EMULATOR_HOST``."""
        return f"http://{self._address[0]}:{self.port}"

    def start(self) -> "StorageServer":
        """Load the data dir, bind, and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("StorageServer is already running")
        self._httpd = _HTTPServer(self._address, TwinStorage(self._data_dir))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"storage-twin:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; data stays on disk. Idempotent."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        self._thread.join()
        self._httpd = self._thread = None

    def wipe(self) -> None:
        """Delete every bucket and object."""
        if self._httpd is None:
            raise RuntimeError("StorageServer is not running")
        backend = self._httpd.backend
        with backend.lock:
            backend.wipe()

    def __enter__(self) -> "StorageServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
