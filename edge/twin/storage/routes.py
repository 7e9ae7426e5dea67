"""The storage twin's route table: gcp-storage-emulator's JSON API handlers on the twin's HTTP layer.

The emulator's handlers take its own `server.Request` and `Response`, made for
`http.server`. Each route here adapts one handler: the layer has read the whole body, so
the emulator gets a request-handler-like object (`path` with the query, `headers`,
`server.server_address`, `rfile=BytesIO(body)` and a Content-Length), and its Response is
collected afterwards instead of being written to a socket. This relies on the internals of
exactly gcp-storage-emulator 2026.7.19 (pinned in requirements.txt): `server.HANDLERS`,
`server.Request`, `server.Response` (`_headers`, `_content`) and the handlers' signature.

Around each handler: its body parsed before the backend's lock is taken; the handler and its
precondition checks run under the lock; the emulator's exceptions become TwinErrors with GCS's
`errors` details, rendered by the layer's one dispatcher.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import quote, urlsplit, urlunsplit

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator import settings
from gcp_storage_emulator.exceptions import BadRequest, Conflict
from gcp_storage_emulator.exceptions import NotFound as EmulatorNotFound
from gcp_storage_emulator.handlers import objects

from edge.twin.errors import TwinError, error_for_status
from edge.twin.server import Headers, Request, Response, Routes
from edge.twin.storage.backend import TwinStorage
from edge.twin.storage.preconditions import MESSAGE, NotModified, PreconditionFailed, Preconditions

logger = logging.getLogger(__name__)

_READS = (objects.get, objects.download)
_COPIES = (objects.copy, objects.rewrite)
_REASONS = {400: "invalid", 404: "notFound", 409: "conflict", 412: "conditionNotMet", 501: "notImplemented"}
_LEFT_OUT = (r"^/$", r"^/wipe$")  # the emulator's own health check, and a GET that wipes everything


def storage_routes(backend: TwinStorage) -> Routes:
    """The emulator's routes (in its order) with every handler adapted, and uploads POSTed
    without the /upload prefix (as the emulator's own router takes them)."""
    object_list = rf"(?:{re.escape(settings.API_ENDPOINT)})?/b/(?P<bucket_name>[-.\w]+)/o"
    routes: Routes = [(object_list, {"GET": _adapt(backend, objects.ls), "POST": _adapt(backend, _insert)})]
    for regex, handlers in emulator.HANDLERS:
        if regex not in _LEFT_OUT:
            routes.append((regex, {method: _adapt(backend, handler) for method, handler in handlers.items()}))
    return routes


def _insert(request, response, storage) -> None:
    if not request.query.get("uploadType"):
        raise _Answered(HTTPStatus.METHOD_NOT_ALLOWED, f"POST {request.path} needs an uploadType")
    objects.insert(request, response, storage)


class _Answered(Exception):
    """A failure known only by its HTTP status (a handler answered without a body)."""

    def __init__(self, status: HTTPStatus, message: str = "") -> None:
        super().__init__(message or status.phrase)
        self.status = status


class _RequestHandler:
    """What the emulator's Request reads from http.server's request handler."""

    def __init__(self, request: Request) -> None:
        self.path = request.path + (f"?{request.query_string}" if request.query_string else "")
        self.headers = Headers(request.headers)
        self.headers.pop("transfer-encoding", None)  # the layer has read the body, chunked or not
        self.headers["content-length"] = str(len(request.body))
        # read only without a Host header, which the layer refuses
        self.server = type("Server", (), {"server_address": ("127.0.0.1", 0)})
        self.rfile = io.BytesIO(request.body)


class _Response(emulator.Response):
    """The emulator's Response, collected; a JSON body's mediaLinks point at `base_url`."""

    def __init__(self, base_url: str) -> None:
        super().__init__(None)
        self._base_url = base_url

    @property
    def has_body(self) -> bool:
        return bool(self._content)

    def json(self, obj):
        super().json(_relinked(obj, self._base_url))

    def collected(self) -> Response:
        headers = dict(self._headers)
        content_type = headers.pop("Content-type", None)
        content = self._content.encode("utf-8") if isinstance(self._content, str) else self._content
        return Response(int(self.status), content, content_type, headers)


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


def _adapt(backend: TwinStorage, handler: Callable) -> Callable[[Request], Response]:
    def handle(request: Request) -> Response:
        emulated = emulator.Request(_RequestHandler(request), request.method)
        emulated.set_match(_ParamsMatch(request))
        try:
            _parse_body(request, emulated)
            response = _Response(emulated.base_url)
            with backend.lock:
                _check_read_or_source(handler, emulated, backend)
                with backend.guarded(Preconditions.from_query(emulated.query)):
                    handler(emulated, response, backend)
                if response.status >= 400 and not response.has_body:
                    raise EmulatorNotFound() if response.status == 404 else _Answered(HTTPStatus(response.status))
                if handler in _READS and response.status < 300:
                    _add_generation_headers(handler, emulated, response, backend)
        except NotModified:
            return Response(304, b"", None)
        except (TwinError, PreconditionFailed, EmulatorNotFound, BadRequest, Conflict, _Answered) as exc:
            raise _gcs_error(exc, emulated, backend) from None
        return response.collected()

    return handle


class _ParamsMatch:
    """Stands in for the re.Match the emulator's Request reads: the route's path parameters,
    percent-encoded again, as the emulator decodes them itself."""

    def __init__(self, request: Request) -> None:
        self._params = {k: quote(v, safe="") for k, v in request.params.items()}

    def groupdict(self) -> dict[str, str]:
        return self._params


def _parse_body(request: Request, emulated: emulator.Request) -> None:
    """Parse the body before the lock: JSON through the layer's strict parser, then the emulator's way."""
    content_type = request.headers.get("content-type") or ""
    if request.body and content_type.startswith("application/json") and "upload_id" not in emulated.query:
        request.json_value()
    try:
        _ = emulated.data
    except ValueError as exc:
        raise BadRequest(f"Invalid request body: {exc}") from None


def _check_read_or_source(handler: Callable, request: emulator.Request, backend: TwinStorage) -> None:
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


def _add_generation_headers(handler, request, response, backend: TwinStorage) -> None:
    """Media downloads carry the generation headers clients read (as GCS sends them)."""
    if handler is not objects.download and request.query.get("alt") != ["media"]:
        return
    params = request.params
    obj = backend.live_object(params["bucket_name"], params["object_id"])
    if obj is not None:
        response["X-Goog-Generation"] = obj["generation"]
        response["X-Goog-Metageneration"] = obj["metageneration"]


def _not_found_message(request: emulator.Request, backend: TwinStorage) -> str:
    params = request.params or {}
    bucket_name = params.get("bucket_name")
    if bucket_name and bucket_name not in backend.buckets:
        return "The specified bucket does not exist."
    if params.get("object_id"):
        return f"No such object: {bucket_name}/{params['object_id']}"
    return "Not Found"


def _gcs_error(exc: Exception, request: emulator.Request, backend: TwinStorage) -> TwinError:
    """The TwinError of a failed storage request, with GCS's `errors` details."""
    if isinstance(exc, TwinError):
        status, message = exc.http_status, exc.message
    elif isinstance(exc, _Answered):
        status, message = exc.status.value, str(exc)
    elif isinstance(exc, PreconditionFailed):
        status, message = 412, MESSAGE
    elif isinstance(exc, EmulatorNotFound):
        status, message = 404, _not_found_message(request, backend)
    else:
        status, message = (409 if isinstance(exc, Conflict) else 400), str(exc)
    detail = {"domain": "global", "reason": _REASONS.get(status, "backendError"), "message": message}
    if status == 412:
        detail.update(locationType="header", location="If-Match", debugInfo=str(exc))
    return error_for_status(status, message, errors=[detail])
