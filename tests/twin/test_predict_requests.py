"""Bad predict requests get a 4xx that names the problem, and the endpoint keeps serving."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from google.api_core import exceptions

from tests.support import upload_line_model

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def endpoint(session_vertex, line_model_uri):
    vertex = session_vertex
    endpoint = vertex.Endpoint.create(display_name="requests")
    endpoint.deploy(upload_line_model(vertex, line_model_uri), machine_type="n1-standard-2")
    yield endpoint
    endpoint.undeploy_all()
    endpoint.delete()


@pytest.fixture(scope="module")
def predict_url(twin, endpoint):
    return f"{twin.vertex.url}/v1/{endpoint.resource_name}:predict"


def post(url, body: bytes):
    return requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)


def still_serves(url):
    response = post(url, b'{"instances": [[1.0]]}')
    assert response.status_code == 200, response.text
    assert abs(response.json()["predictions"][0][0] - 3.0) < 0.1


BAD_REQUESTS = {
    "not json": (b"{instances:", 400, "JSON"),
    "no instances": (b'{"inputs": [[1.0]]}', 400, "instances"),
    "instances not a list": (b'{"instances": 3}', 400, "instances"),
    "empty instances": (b'{"instances": []}', 400, "instances"),
    "wrong shape": (b'{"instances": [[1.0, 2.0]]}', 400, "shape"),
    "wrong type": (b'{"instances": [["a"]]}', 400, "instance 0"),
    "nan": (b'{"instances": [[NaN]]}', 400, "NaN"),
    "infinity": (b'{"instances": [[Infinity]]}', 400, "Infinity"),
    "nested 5000 levels deep": (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested too deeply"),
    "too many instances": (json.dumps({"instances": [[1.0]] * 1001}).encode(), 400, "1000"),
    "over 1.5 MB": (json.dumps({"instances": [[1.0]] * 400_000}).encode(), 413, "1.5 MB"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_a_bad_request_gets_a_clear_4xx_and_the_endpoint_still_serves(predict_url, case):
    body, status, words = BAD_REQUESTS[case]
    response = post(predict_url, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert words.lower() in error["message"].lower(), error["message"]
    still_serves(predict_url)


def test_the_sdk_raises_bad_request_naming_the_shape(endpoint):
    with pytest.raises(exceptions.BadRequest, match="shape"):
        endpoint.predict(instances=[[1.0, 2.0, 3.0]])


def test_predict_on_an_endpoint_without_models_is_refused(vertex):
    empty = vertex.Endpoint.create(display_name="empty")
    try:
        with pytest.raises(exceptions.BadRequest, match="no deployed model"):
            empty.predict(instances=[[1.0]])
    finally:
        empty.delete()


def test_concurrent_requests_each_get_their_own_predictions_and_errors(twin, predict_url):
    """The twin combines concurrent predict calls into one model call: each caller still gets its own answer."""
    forwarders = [server.forwarder for server in twin.backend.servers.servers.values()]
    combined_before = sum(f.combined_bodies for f in forwarders)
    start = threading.Barrier(16)
    wrong: list[str] = []

    def client(i: int) -> None:
        session = requests.Session()
        bad = i % 4 == 0  # a quarter send instances of the wrong shape
        body = json.dumps({"instances": [[float(i), 1.0]] if bad else [[float(i)], [float(-i)]]}).encode()
        start.wait()
        for _ in range(10):
            response = session.post(predict_url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
            if bad:
                ok = response.status_code == 400 and "shape" in response.json()["error"]["message"]
            else:
                got = [p[0] for p in response.json().get("predictions", [])]
                ok = response.status_code == 200 and len(got) == 2 and abs(got[0] - (2 * i + 1)) < 0.1
                ok = ok and abs(got[1] - (1 - 2 * i)) < 0.1
            if not ok:
                wrong.append(f"client {i}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert sum(f.combined_bodies for f in forwarders) > combined_before, "no calls were combined"
