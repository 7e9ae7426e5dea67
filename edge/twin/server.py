"""The twin's one HTTP layer: every twin service is a route table served by `serve(routes)`.

A route table is a list of `(regex, {METHOD: handler})`; the first regex that fully matches
the request's path (percent-encoded, as sent) wins, and its named groups, decoded, become
`request.params`. A handler takes a `Request` and returns a `Response`. Plain functions may
block (they run on the server's thread pool); `async def` handlers run on the event loop
(the hot path: predict) and must not block.

Everything that is the same for every service lives here and only here:
- one error path: a `TwinError` becomes its JSON body (Google's `{"error": {code, message,
  status}}` unless the service renders errors its own way); anything else is logged and
  answered 500;
- limits: the request body size (per server, or per handler with `limited`), strict JSON
  (no NaN/Infinity) nested at most MAX_JSON_DEPTH levels (`Request.json()`);
- requests from web pages (an `Origin` header) or for a foreign `Host` are refused: the twin
  has no authentication, so no page may reach it, not even through DNS rebinding;
- twin-only controls live under `/_twin/`; `GET /_twin/health` answers on every server;
- `X-HTTP-Method-Override` on POST, as Google's APIs accept it.

`Server` binds 127.0.0.1 before it serves (port 0 = a free port, known at once) with a
listen backlog of LISTEN_BACKLOG, and runs uvicorn (httptools parser, uvloop; each response
leaves in one send) in a background thread until `stop()`. `benchmarks/http_layer.py` measures it against the
alternatives. `Twin` (edge/twin/twin.py) can also be imported from here.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import orjson

from edge.twin.errors import InvalidArgument, MethodNotAllowed, NotFound, PayloadTooLarge, PermissionDenied, TwinError

if TYPE_CHECKING:
    from edge.twin.twin import Twin

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
LISTEN_BACKLOG = 1024  # SYNs beyond the backlog wait for a retransmit (1 s, then 3 s...)
KEEP_ALIVE_SECONDS = 3600  # clients' pooled connections stay usable between commands
MAX_BODY_BYTES = 64 * 1024 * 1024  # a server's default request body limit
MAX_PREDICT_BYTES = 1_572_864  # Vertex AI's online prediction request limit (1.5 MB)
MAX_JSON_DEPTH = 100  # as protobuf's JSON parser allows
STOP_SECONDS = 10  # in-flight requests get this long to finish when a server stops


# ---------------------------------------------------------------- requests and responses


class Headers(dict):
    """Request headers by lower-case name; lookups ignore case."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


@dataclass
class Request:
    """One HTTP request, its body read in full. `path` is percent-encoded, as sent; `query`
    keeps the last value of each name (`query_string` has them all)."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    query_string: str = ""

    def json(self) -> dict:
        """The body as a JSON object; an empty body is `{}`. InvalidArgument otherwise."""
        if not self.body:
            return {}
        value = self.json_value()
        if not isinstance(value, dict):
            raise InvalidArgument("Invalid JSON payload received. Expected an object.")
        return value

    def json_value(self) -> Any:
        """The body as any JSON value: strict JSON (no NaN or Infinity), nested at most MAX_JSON_DEPTH levels."""
        return parse_json(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        """`obj` as JSON (non-finite floats are written as null)."""
        return cls(status, orjson.dumps(obj))


Handler = Callable[[Request], "Response | Awaitable[Response]"]
Routes = list[tuple[str, dict[str, Handler]]]


def limited(max_bytes: int, what: str) -> Callable[[Handler], Handler]:
    """Gives a handler its own body limit; `what` names it in the 413 message."""

    def mark(handler: Handler) -> Handler:
        handler.body_limit = (max_bytes, what)
        return handler

    return mark


predict_limited = limited(MAX_PREDICT_BYTES, "the online prediction limit of 1572864 bytes (1.5 MB)")


# ---------------------------------------------------------------- JSON


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON; numbers must be finite")


def _too_deep() -> InvalidArgument:
    return InvalidArgument(
        f"Invalid JSON payload received. The JSON value is nested too deeply (more than {MAX_JSON_DEPTH} levels)."
    )


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


def parse_json(body: bytes) -> Any:
    """The JSON value of `body`; InvalidArgument naming the problem for anything but strict,
    finite JSON nested at most MAX_JSON_DEPTH levels."""
    try:
        value = orjson.loads(body)  # rejects NaN and Infinity; about 6x faster than json
    except orjson.JSONDecodeError:
        try:  # the standard decoder explains the problem better (and takes lone surrogates)
            value = json.loads(body, parse_constant=_reject_constant)
        except RecursionError:
            raise _too_deep() from None
        except UnicodeDecodeError:
            raise InvalidArgument("Invalid JSON payload received. The body is not UTF-8.") from None
        except ValueError as exc:
            raise InvalidArgument(f"Invalid JSON payload received. {exc}") from None
    # Brackets in the body bound the depth from above: the walk is only for bodies with many.
    if isinstance(value, (list, dict)) and body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        if _deeper_than(value, MAX_JSON_DEPTH):
            raise _too_deep()
    return value


# ---------------------------------------------------------------- routing


def refusal(headers: Headers, port: int) -> str | None:
    """Why a request must be refused because a web page (or DNS rebinding) sent it, or None.

    The twin has no authentication; the Google clients send neither `Origin` nor a foreign `Host`.
    """
    if headers.get("origin"):
        return "the twin does not answer requests from web pages"
    host = headers.get("host", "")
    if host not in {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}:
        return f"the twin answers only at 127.0.0.1:{port}, not at Host {host[:100]!r}"
    return None


@dataclass(frozen=True)
class _Route:
    handler: Handler
    is_async: bool
    body_limit: tuple[int, str] | None


class Router:
    """A route table compiled; `find` answers the route of a method and path, or raises."""

    def __init__(self, routes: Routes):
        self._routes = [
            (
                re.compile(pattern),
                {
                    method: _Route(h, inspect.iscoroutinefunction(h), getattr(h, "body_limit", None))
                    for method, h in methods.items()
                },
            )
            for pattern, methods in routes
        ]

    def find(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        for pattern, methods in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            route = methods.get(method)
            if route is None:
                allowed = ", ".join(methods)
                raise MethodNotAllowed(f"{method} is not allowed on {path}; use {allowed}", headers={"Allow": allowed})
            return route, {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
        raise NotFound(f"The twin has no route for {method} {path}")


async def _health(_request: Request) -> Response:
    return Response.json({"status": "ok"})


TWIN_ROUTES: Routes = [(r"/_twin/health", {"GET": _health})]


# ---------------------------------------------------------------- the ASGI application


def google_error_body(error: TwinError) -> dict:
    return error.body()


class _App:
    """The ASGI application of one server: parse, limit, route, call, answer."""

    def __init__(self, server: Server):
        self.server = server

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        try:
            response = await self._respond(scope, receive)
        except TwinError as error:
            response = self._error_response(error, scope)
        except Exception as exc:  # a bug in the twin: answer 500, keep serving
            log.exception("%s server failed on %s %s", self.server.name, scope["method"], scope["path"])
            error = TwinError(f"twin internal error: {type(exc).__name__}: {exc}")
            response = self._error_response(error, scope, logged=True)
        headers = [(b"content-length", str(len(response.body)).encode())]
        if response.content_type:
            headers.append((b"content-type", response.content_type.encode()))
        headers += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _error_response(self, error: TwinError, scope: dict, logged: bool = False) -> Response:
        if not logged:
            level = logging.WARNING if error.http_status >= 500 else logging.DEBUG
            log.log(
                level, "%s %s %s -> %d: %s", self.server.name, scope["method"], scope["path"], error.http_status, error
            )
        response = Response.json(self.server.error_body(error), error.http_status)
        response.headers.update(error.headers)
        return response

    async def _respond(self, scope: dict, receive: Callable) -> Response:
        headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        reason = refusal(headers, self.server.port)
        if reason:
            raise PermissionDenied(reason, headers={"Connection": "close"})
        method = scope["method"]
        if method == "POST" and "x-http-method-override" in headers:
            method = headers["x-http-method-override"].upper()
        path = scope["raw_path"].decode("latin-1")
        route, params = self.server.router.find(method, path)
        max_bytes, what = route.body_limit or (
            self.server.max_body,
            f"the twin's limit of {self.server.max_body} bytes",
        )
        body = await _read_body(receive, headers, max_bytes, what)
        query_string = scope["query_string"].decode("latin-1")
        query = dict(parse_qsl(query_string, keep_blank_values=True)) if query_string else {}
        request = Request(method, path, query, headers, body, params, query_string)
        if route.is_async:
            return await route.handler(request)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.server.executor, route.handler, request)


def _too_large(size: int | str, what: str) -> PayloadTooLarge:
    # The connection stays open: the server reads and drops the rest of the body, so that a client
    # still sending it reads this answer instead of a reset.
    return PayloadTooLarge(f"Request payload of {size} bytes exceeds {what}; send less per request.")


async def _read_body(receive: Callable, headers: Headers, max_bytes: int, what: str) -> bytes:
    """The request body; PayloadTooLarge as soon as it is known to exceed `max_bytes` (from
    Content-Length, before any of it is read, or while a chunked body arrives)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > max_bytes:
        raise _too_large(declared, what)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidArgument("The client went away before it sent the whole body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(f"more than {max_bytes}", what)
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# ---------------------------------------------------------------- the server


class _OneWrite:
    """A transport whose response head waits for the body, so that both leave in one send:
    half the syscalls, and a client reads one segment instead of two. The head is sent on the
    next turn of the loop at the latest (a HEAD response, a 100 Continue)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._head = b""

    def write(self, data: bytes) -> None:
        if self._head:
            data, self._head = self._head + data, b""
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n"):
            self._head = data
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _protocol_class() -> type:
    """uvicorn's httptools protocol, writing each response in one send (see _OneWrite)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class OneWriteProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(_OneWrite(transport, self.loop))

    return OneWriteProtocol


def listening_socket(port: int = 0) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:`port` (0: a free one) and listening with LISTEN_BACKLOG."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


class Server:
    """Serves a route table on 127.0.0.1 from a background thread.

    The socket is bound when the object is made, so `port` and `url` are known before
    serving; `mount(routes)` may set the table after that (a service whose backend needs
    the URL). `start()` serves, `stop()` stops (idempotent); as a context manager it stops
    on exit. `error_body` renders a TwinError (Google's body by default); `on_stop`
    coroutines run on the server's event loop after it stops serving.
    """

    def __init__(
        self,
        routes: Routes | None = None,
        *,
        name: str = "twin",
        port: int = 0,
        max_body: int = MAX_BODY_BYTES,
        error_body: Callable[[TwinError], dict] = google_error_body,
        workers: int = 32,
        on_stop: Iterable[Callable[[], Awaitable[None]]] = (),
    ):
        self.name = name
        self.max_body = max_body
        self.error_body = error_body
        self.on_stop = list(on_stop)
        self.router: Router | None = None
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix=f"{name}-handler")
        self._socket = listening_socket(port)
        self.port: int = self._socket.getsockname()[1]
        self._uvicorn = None
        self._thread: threading.Thread | None = None
        if routes is not None:
            self.mount(routes)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def mount(self, routes: Routes) -> Server:
        """Serve `routes` (after the twin's own `/_twin/health`)."""
        self.router = Router(TWIN_ROUTES + list(routes))
        return self

    def start(self, timeout: float = 30) -> Server:
        """Serve from a background thread; returns once the server accepts requests."""
        import uvicorn

        if self.router is None:
            raise RuntimeError(f"{self.name} server: mount a route table before start()")
        config = uvicorn.Config(
            _App(self),
            http=_protocol_class(),
            lifespan="off",
            ws="none",
            access_log=False,
            log_config=None,
            log_level="warning",
            backlog=LISTEN_BACKLOG,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=STOP_SECONDS,
            server_header=False,
            proxy_headers=False,  # no proxy in front: its middleware would only cost time
        )
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-server:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the twin's {self.name} server did not start on port {self.port}")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        try:
            await self._uvicorn.serve(sockets=[self._socket])
        finally:
            for hook in self.on_stop:
                try:
                    await hook()
                except Exception:
                    log.exception("%s server: a stop hook failed", self.name)

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (at most STOP_SECONDS), release the port."""
        if self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(STOP_SECONDS + 5)
            if self._thread.is_alive():
                self._uvicorn.force_exit = True
                self._thread.join(5)
            self._thread = None
        self._socket.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Server:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def serve(routes: Routes, **options: Any) -> Server:
    """A started Server for `routes` (see Server for the options): `with serve(routes) as server: ...`."""
    return Server(routes, **options).start()


def __getattr__(name: str) -> type[Twin]:
    if name == "Twin":  # here for `from edge.twin.server import Twin`; imported late, as it imports every service
        from edge.twin.twin import Twin

        return Twin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
