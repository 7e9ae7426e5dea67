"""The twin's one HTTP layer (edge/twin/server.py): routing, the one error path, limits, refusals, the backlog."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
import requests

from edge.twin.errors import NotFound
from edge.twin.server import LISTEN_BACKLOG, Request, Response, Server, limited, serve
from tests.twin.connections import answered_within, connect_all, connected_within

pytestmark = pytest.mark.timeout(120)

DEEP = b"[" * 5000 + b"]" * 5000


@pytest.fixture(scope="module")
def server():
    """A server on a free port whose routes exercise the handler contract."""

    async def echo(request: Request) -> Response:
        return Response.json({"json": request.json(), "params": request.params, "query": request.query})

    def where(request: Request) -> Response:
        return Response.json({"thread": threading.current_thread().name, "method": request.method})

    def missing(request: Request) -> Response:
        raise NotFound(f"There is no {request.params['thing']}.")

    def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    @limited(100, "the test limit of 100 bytes")
    async def small(request: Request) -> Response:
        return Response.json({"size": len(request.body)})

    routes = [
        (r"/v1/echo/(?P<name>[^/]+)", {"POST": echo}),
        (r"/v1/where", {"GET": where, "DELETE": where}),
        (r"/v1/missing/(?P<thing>[^/]+)", {"GET": missing}),
        (r"/v1/broken", {"GET": broken}),
        (r"/v1/small", {"POST": small}),
    ]
    with serve(routes, name="test") as running:
        yield running


def post(server: Server, path: str, body: bytes, **headers) -> requests.Response:
    return requests.post(server.url + path, data=body, headers={"Content-Type": "application/json", **headers})


def test_a_handler_gets_decoded_path_params_the_query_and_the_json_body(server):
    response = post(server, "/v1/echo/models%2Fm%401?filter=a&filter=b", b'{"x": [1, 2]}')
    assert response.json() == {"json": {"x": [1, 2]}, "params": {"name": "models/m@1"}, "query": {"filter": "b"}}


def test_a_plain_handler_runs_on_the_thread_pool(server):
    assert requests.get(server.url + "/v1/where").json()["thread"].startswith("test-handler")


def test_a_twin_error_is_answered_with_googles_error_body(server):
    response = requests.get(server.url + "/v1/missing/unicorn")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 404, "message": "There is no unicorn.", "status": "NOT_FOUND"}}


def test_a_bug_in_a_handler_gets_500_and_the_server_keeps_serving(server):
    response = requests.get(server.url + "/v1/broken")
    assert response.status_code == 500
    assert "RuntimeError: a bug" in response.json()["error"]["message"]
    assert requests.get(server.url + "/v1/where").status_code == 200


def test_an_unknown_path_gets_404_and_a_wrong_method_405_naming_the_allowed_ones(server):
    assert requests.get(server.url + "/v2/nothing").status_code == 404
    response = requests.put(server.url + "/v1/where")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, DELETE"
    assert "use GET, DELETE" in response.json()["error"]["message"]


def test_a_body_nested_5000_levels_deep_gets_400_saying_it_is_nested_too_deeply(server):
    response = post(server, "/v1/echo/x", b'{"instances": ' + DEEP + b"}")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]


def test_a_body_nested_a_little_deeper_than_the_limit_is_refused_too(server):
    response = post(server, "/v1/echo/x", b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}")
    assert response.status_code == 400
    assert "more than 100 levels" in response.json()["error"]["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_naming_the_literal(server, literal):
    response = post(server, "/v1/echo/x", f'{{"x": [{literal}]}}'.encode())
    assert response.status_code == 400
    assert f"{literal} is not valid JSON" in response.json()["error"]["message"]


def test_a_body_over_the_limit_gets_413_before_it_is_sent(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/v1/small")
    connection.putheader("Content-Length", "101")
    connection.endheaders()  # the body never comes: the size alone must be refused
    response = connection.getresponse()
    assert response.status == 413
    assert "the test limit of 100 bytes" in json.loads(response.read())["error"]["message"]
    connection.close()


def test_a_chunked_body_over_the_limit_gets_413(server):
    response = requests.post(server.url + "/v1/small", data=iter([b"x" * 60, b"x" * 60]))
    assert response.status_code == 413


def test_a_request_from_a_web_page_is_refused(server):
    response = requests.get(server.url + "/v1/where", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert "web pages" in response.json()["error"]["message"]


def test_a_request_for_a_foreign_host_is_refused(server):
    response = requests.get(server.url + "/v1/where", headers={"Host": f"evil.example:{server.port}"})
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_x_http_method_override_on_post_picks_the_handler(server):
    response = requests.post(server.url + "/v1/where", headers={"X-HTTP-Method-Override": "DELETE"})
    assert response.json()["method"] == "DELETE"


def test_every_server_answers_twin_health(server):
    assert requests.get(server.url + "/_twin/health").json() == {"status": "ok"}


def test_the_socket_listens_with_a_backlog_of_at_least_128_before_it_serves():
    assert LISTEN_BACKLOG >= 128
    unstarted = Server([], name="backlog")  # bound and listening, but nothing accepts yet
    try:
        sockets = connect_all(unstarted.port, 200)
        assert connected_within(sockets, 0.5) == 200  # a backlog of 5 lets 6 in, the rest wait >= 1 s
        for sock in sockets:
            sock.close()
    finally:
        unstarted.stop()


@pytest.mark.parametrize("service", ["storage", "vertex"])
def test_200_connections_opened_at_once_are_all_answered(twin, service):
    port = twin.ports[service]
    assert answered_within(port, 200, seconds=3) == 200


def test_the_vertex_api_refuses_a_body_nested_too_deeply(twin):
    response = requests.post(
        f"{twin.vertex.url}/v1/projects/p/locations/l/endpoints",
        data=b'{"displayName": ' + DEEP + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]


def test_the_storage_api_refuses_a_body_nested_too_deeply(twin):
    response = requests.post(
        f"{twin.storage.url}/storage/v1/b?project=p",
        data=b'{"name": ' + DEEP + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]
