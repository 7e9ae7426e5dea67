"""A small JSON-over-HTTP server: a regex route table, one error dispatcher, a thread."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from edge.twin.errors import InvalidArgument, MethodNotAllowed, NotFound, TwinError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict:
        """The body as a JSON object; an empty body is `{}`."""
        if not self.body:
            return {}
        try:
            value = json.loads(self.body, parse_constant=_reject_constant)
        except ValueError as exc:
            raise InvalidArgument(f"Invalid JSON payload received. {exc}") from None
        if not isinstance(value, dict):
            raise InvalidArgument("Invalid JSON payload received. Expected an object.")
        return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, obj, status: int = 200) -> Response:
        return cls(status, orjson.dumps(obj))


Handler = Callable[[Request], Response]


class Router:
    """Routes `(regex, {METHOD: handler})` in order; the first regex that matches wins."""

    def __init__(self, routes: list[tuple[str, dict[str, Handler]]]):
        self.routes = [(re.compile(pattern), methods) for pattern, methods in routes]

    def dispatch(self, request: Request) -> Response:
        try:
            for pattern, methods in self.routes:
                match = pattern.fullmatch(request.path)
                if match is None:
                    continue
                handler = methods.get(request.method)
                if handler is None:
                    raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
                request.params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                return handler(request)
            raise NotFound(f"The twin has no route for {request.method} {request.path}")
        except TwinError as err:
            return Response.json(err.body(), err.http_status)
        except Exception as exc:  # a bug in the twin: answer 500, keep serving
            log.exception("handler failed for %s %s", request.method, request.path)
            err = TwinError(f"twin internal error: {type(exc).__name__}: {exc}")
            return Response.json(err.body(), err.http_status)


def refusal(headers, port: int) -> str | None:
    """Why a request must be refused because a web page (or DNS rebinding) sent it, or None.

    The twin has no authentication; the Google clients send neither `Origin` nor a foreign `Host`.
    """
    if headers.get("Origin"):
        return "the twin does not answer requests from web pages"
    host = headers.get("Host", "")
    if host not in {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}:
        return f"the twin answers only at 127.0.0.1:{port}, not at Host {host[:100]!r}"
    return None


class _Headers(dict):
    """Request headers by lower-case name; get() ignores case, as email's Message does."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class FastRequestHandler(BaseHTTPRequestHandler):
    """BaseHTTPRequestHandler with keep-alive, no Nagle delay, one send per response and a quick header parser."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small JSON answers must not wait for a delayed ACK (~40 ms)
    wbufsize = 1 << 16  # headers and body leave in one send, flushed after each request

    _date = (0, "")  # the Date header of the current second

    def parse_request(self) -> bool:
        """BaseHTTPRequestHandler.parse_request for HTTP/1.0 and 1.1, without the email
        package's MIME parser, which takes about a third of a small request's CPU time."""
        self.command = None
        self.request_version = "HTTP/1.0"  # errors below get a status line
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            self.send_error(400, f"Bad request line {self.requestline[:200]!r}")
            return False
        if words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(505, f"HTTP version {words[2][:20]!r} is not supported")
            return False
        self.command, self.path, self.request_version = words
        self.close_connection = self.request_version != "HTTP/1.1"
        headers = _Headers()
        while True:
            line = self.rfile.readline(65537)
            if len(line) > 65536 or len(headers) > 100:
                self.send_error(431, "Request header fields too large")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(line, "iso-8859-1").partition(":")
            name = name.strip().lower()
            if not colon or not name or line[:1] in (b" ", b"\t"):
                self.send_error(400, f"Bad header line {line[:200]!r}")
                return False
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if headers.get("expect", "").lower() == "100-continue" and not self.close_connection:
            return self.handle_expect_100()
        return True

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        if FastRequestHandler._date[0] != second:
            FastRequestHandler._date = (second, super().date_time_string(second))
        return FastRequestHandler._date[1]


def _handler_class(service: HttpService):
    class _Handler(FastRequestHandler):
        def _serve(self):
            reason = refusal(self.headers, self.server.server_address[1])
            if reason:
                self.close_connection = True
                self._send(
                    Response.json({"error": {"code": 403, "message": reason, "status": "PERMISSION_DENIED"}}, 403)
                )
                return
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                err = InvalidArgument(f"request body of {length} bytes is over the twin's limit")
                self._send(Response.json(err.body(), 413))
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            request = Request(self.command, url.path, query, dict(self.headers), body)
            self._send(service.router.dispatch(request))

        def _send(self, response: Response):
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format, *args):
            log.debug("%s - %s", self.address_string(), format % args)

    return _Handler


class HttpService:
    """Serves a Router on `host:port` from a background thread; port 0 picks a free one."""

    def __init__(self, router: Router | None, host: str = "127.0.0.1", port: int = 0):
        self.router = router
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
