"""Which HTTP layer for the twin: a JSON echo served by each candidate, side by side, in one run.

    .venv/bin/python benchmarks/http_layer.py [--seconds 3] [--clients 1,4,16,64]

Candidates, each in a process of its own (as the twin runs), answering
POST /v1/x:predict {"instances": [[784 zeros]]} with {"n": 1}:
  - http.server, hand-made: the twin's layer before it moved to uvicorn (edge/twin/http.py
    of git commit 78b8f54, loaded from git);
  - werkzeug, threaded: moto's choice (`make_server(threaded=True)`);
  - uvicorn + httptools + uvloop + starlette;
  - edge.twin.server as built (uvicorn + httptools + uvloop, raw ASGI), with an async
    handler (the predict path) and with a plain one (run on the thread pool).
The clients are threads of this process, one keep-alive connection each. Printed per
candidate and number of clients: requests/s, p50, p99 and the longest request, and the
ratio of requests/s to the hand-made server's. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "78b8f54"
PATH = "/v1/x:predict"
BODY = json.dumps({"instances": [[0.0] * 784]}).encode()
CANDIDATES = {
    "handmade": "http.server, hand-made (78b8f54)",
    "werkzeug": "werkzeug, threaded",
    "starlette": "uvicorn+httptools+uvloop+starlette",
    "edge": "edge.twin.server, async handler",
    "edge-sync": "edge.twin.server, plain handler",
}


# ---------------------------------------------------------------- servers (each in its own process)


def _echo(body: bytes) -> bytes:
    import orjson

    return orjson.dumps({"n": len(orjson.loads(body)["instances"])})


def _handmade() -> int:
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:edge/twin/http.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = sys.modules["handmade_http"] = types.ModuleType("handmade_http")
    exec(compile(source, "handmade_http.py", "exec"), module.__dict__)
    routes = [(PATH, {"POST": lambda r: module.Response(200, _echo(r.body))})]
    return module.HttpService(module.Router(routes)).start().port


def _werkzeug() -> int:
    from werkzeug.serving import WSGIRequestHandler, make_server
    from werkzeug.wrappers import Request, Response

    @Request.application
    def app(request):
        return Response(_echo(request.get_data()), content_type="application/json")

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args):
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_port


def _starlette() -> int:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from edge.twin.server import listening_socket

    async def predict(request):
        return Response(_echo(await request.body()), media_type="application/json")

    sock = listening_socket(0)
    config = uvicorn.Config(
        Starlette(routes=[Route(PATH, predict, methods=["POST"])]),
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="error",
    )
    threading.Thread(target=uvicorn.Server(config).run, kwargs={"sockets": [sock]}, daemon=True).start()
    time.sleep(1)
    return sock.getsockname()[1]


def _edge(use_async: bool) -> int:
    from edge.twin.server import Response, serve

    async def predict(request):
        return Response(200, _echo(request.body))

    def predict_sync(request):
        return Response(200, _echo(request.body))

    return serve([(PATH, {"POST": predict if use_async else predict_sync})], name="bench").port


def _serve(kind: str) -> None:
    logging.disable(logging.CRITICAL)
    start = {
        "handmade": _handmade,
        "werkzeug": _werkzeug,
        "starlette": _starlette,
        "edge": lambda: _edge(True),
        "edge-sync": lambda: _edge(False),
    }[kind]
    print(start(), flush=True)
    sys.stdin.read()  # serve until the benchmark closes the pipe


# ---------------------------------------------------------------- clients


def load(port: int, clients: int, seconds: float) -> dict[str, float]:
    """`clients` keep-alive clients posting BODY for `seconds`: requests/s, p50, p99 and max latency (ms),
    and failed requests (a reset connection is replaced by a new one)."""
    latencies: list[float] = []
    failures = [0]
    stop = time.perf_counter() + seconds
    start = threading.Barrier(clients)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        start.wait()
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                connection.request("POST", PATH, BODY, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failures[0] += 1
                connection.close()
                continue
            mine.append(time.perf_counter() - began)
        latencies.extend(mine)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "max": latencies[-1] * 1000,
        "failed": failures[0],
    }


def measure(kind: str, client_counts: list[int], seconds: float) -> dict[int, dict[str, float]]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # http.server prints every reset connection
    )
    try:
        port = int(server.stdout.readline())
        load(port, 4, 0.5)  # warm-up
        return {clients: load(port, clients, seconds) for clients in client_counts}
    finally:
        server.stdin.close()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    parser.add_argument("--clients", default="1,4,16,64", help="numbers of concurrent clients")
    parser.add_argument("--serve", choices=CANDIDATES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, str(ROOT))
        _serve(args.serve)
        return
    client_counts = [int(c) for c in args.clients.split(",")]
    results = {kind: measure(kind, client_counts, args.seconds) for kind in CANDIDATES}
    base = results["handmade"]
    print(f"JSON echo of a 784-value instance; {args.seconds:g} s per cell; clients are threads of one process")
    print(
        f"{'server':36} {'clients':>7} {'req/s':>7} {'x hand-made':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} "
        f"{'failed':>6}"
    )
    for kind, label in CANDIDATES.items():
        for clients, r in results[kind].items():
            ratio = r["rps"] / base[clients]["rps"]
            print(
                f"{label:36} {clients:7d} {r['rps']:7.0f} {ratio:10.2f}x "
                f"{r['p50']:7.2f} {r['p99']:7.2f} {r['max']:8.1f} {r['failed']:6d}"
            )


if __name__ == "__main__":
    main()
