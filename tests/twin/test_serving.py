"""The model server answers like Vertex's prebuilt TensorFlow container and batches
concurrent requests (edge.twin.vertex.serving), with real TensorFlow SavedModels."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from edge.twin.vertex.serving import MAX_BODY_BYTES, PROJECT_ROOT, start_model_server, stop_model_server
from tests.twin.connections import answered_within

pytestmark = pytest.mark.timeout(300)

MAX_INSTANCES = 8
MAX_BATCH = 4


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, imported once for the module with its C++ logging quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    return tensorflow


@pytest.fixture(scope="module")
def image_model(tmp_path_factory, tf):
    """A Keras model (784 pixels -> 10 softmax scores, fixed seed) and its export."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("image_model") / "model"
    model.export(path, verbose=False)
    return model, path


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory, tf):
    """A SavedModel with two inputs (features float32[3], offset int32) and two outputs
    (total float32, sign string); a negative offset fails an assertion in the model."""

    class Scorer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([None], tf.int32)])
        def serve(self, features, offset):
            tf.debugging.assert_non_negative(offset, message="offset must be >= 0")
            total = tf.reduce_sum(features, axis=1) + tf.cast(offset, tf.float32)
            return {"total": total, "sign": tf.where(total >= 0, "positive", "negative")}

    scorer = Scorer()
    path = tmp_path_factory.mktemp("scorer") / "model"
    tf.saved_model.save(scorer, str(path), signatures={"serving_default": scorer.serve})
    return path


@pytest.fixture(scope="module")
def image_port(image_model, tmp_path_factory):
    """Port of a model server for image_model, with small instance and batch limits."""
    log = tmp_path_factory.mktemp("image_server") / "server.log"
    proc, port = start_model_server(image_model[1], log, max_instances=MAX_INSTANCES, max_batch=MAX_BATCH)
    yield port
    stop_model_server(proc)


@pytest.fixture(scope="module")
def scorer_port(scorer_dir, tmp_path_factory):
    """Port of a model server for the two-input scorer model."""
    proc, port = start_model_server(scorer_dir, tmp_path_factory.mktemp("scorer") / "server.log")
    yield port
    stop_model_server(proc)


@pytest.fixture
def images(image_model):
    """Sixteen distinct images and the in-process model's predictions for them."""
    model, _ = image_model
    x = np.random.default_rng(7).random((16, 784)).astype(np.float32)
    return x, np.asarray(model(x))


def call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def predict(port: int, instances: list) -> tuple[int, dict]:
    return call(port, "POST", "/predict", json.dumps({"instances": instances}).encode())


def assert_still_serves(port: int, images) -> None:
    x, expected = images
    status, payload = predict(port, x[:1].tolist())
    assert status == 200, payload
    assert np.allclose(payload["predictions"], expected[:1], atol=1e-6)


def test_health_answers_ok_once_the_model_is_loaded(image_port):
    assert call(image_port, "GET", "/health") == (200, {"status": "ok"})


def test_predictions_equal_the_in_process_model_outputs(image_port, images):
    x, expected = images
    status, payload = predict(image_port, x[:MAX_BATCH].tolist())
    assert status == 200, payload
    assert np.allclose(payload["predictions"], expected[:MAX_BATCH], atol=1e-6)


def test_a_request_with_three_instances_gets_three_predictions(image_port, images):
    status, payload = predict(image_port, images[0][:3].tolist())
    assert status == 200, payload
    assert [len(row) for row in payload["predictions"]] == [10, 10, 10]


def test_a_request_larger_than_the_batch_limit_is_answered_in_full(image_port, images):
    x, expected = images
    status, payload = predict(image_port, x[: MAX_BATCH + 2].tolist())
    assert status == 200, payload
    assert np.allclose(payload["predictions"], expected[: MAX_BATCH + 2], atol=1e-6)


def test_an_instance_may_be_an_object_keyed_by_the_input_name(image_port, image_model, images):
    input_name = image_model[0].inputs[0].name
    x, expected = images
    status, payload = predict(image_port, [{input_name: x[0].tolist()}])
    assert status == 200, payload
    assert np.allclose(payload["predictions"], expected[:1], atol=1e-6)


PIXELS = [0.5] * 784
BAD_REQUESTS = {
    "not json": (b"{instances:", ["JSON"]),
    "not an object": (b"[[0.5]]", ["object", "instances"]),
    "no instances": (b'{"inputs": [[0.5]]}', ["no 'instances'"]),
    "instances not a list": (b'{"instances": 3}', ["'instances' must be a list"]),
    "empty instances": (b'{"instances": []}', ["'instances' is empty"]),
    "NaN": (b'{"instances": [[NaN]]}', ["NaN"]),
    "nested 5000 levels deep": (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", ["nested too deeply"]),
    "Infinity": (b'{"instances": [[-Infinity]]}', ["Infinity"]),
    "wrong shape": (
        json.dumps({"instances": [PIXELS, PIXELS[:-1]]}).encode(),
        ["instance 1", "expected shape [784]", "got [783]"],
    ),
    "object with an unknown key": (
        json.dumps({"instances": [{"pixels": PIXELS}]}).encode(),
        ["instance 0", "keys pixels", "one input"],
    ),
    "wrong type": (json.dumps({"instances": [["a"] * 784]}).encode(), ["instance 0", "float32", "strings"]),
    "out of float32 range": (json.dumps({"instances": [[1e39] * 784]}).encode(), ["instance 0", "out of range"]),
    "too many instances": (
        json.dumps({"instances": [PIXELS] * (MAX_INSTANCES + 1)}).encode(),
        [f"{MAX_INSTANCES + 1} instances", f"at most {MAX_INSTANCES}"],
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_a_bad_request_gets_400_naming_the_problem_and_the_server_keeps_serving(image_port, images, case):
    body, words = BAD_REQUESTS[case]
    status, payload = call(image_port, "POST", "/predict", body)
    assert status == 400, payload
    for word in words:
        assert word in payload["error"]
    assert_still_serves(image_port, images)


def test_a_body_over_1_5_mb_gets_413_before_it_is_sent(image_port, images):
    connection = http.client.HTTPConnection("127.0.0.1", image_port, timeout=60)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()  # the body never comes: the size alone must be refused
    response = connection.getresponse()
    assert response.status == 413
    assert "1.5 MB" in json.loads(response.read())["error"]
    connection.close()
    assert_still_serves(image_port, images)


def test_an_unknown_path_gets_404(image_port):
    status, payload = call(image_port, "GET", "/v1/models")
    assert status == 404
    assert "/v1/models" in payload["error"]


def test_a_wrong_method_gets_405_naming_the_allowed_one(image_port):
    status, payload = call(image_port, "GET", "/predict")
    assert status == 405
    assert "use POST" in payload["error"]


def test_a_kept_alive_connection_answers_request_after_request(image_port, images):
    connection = http.client.HTTPConnection("127.0.0.1", image_port, timeout=60)
    body = json.dumps({"instances": images[0][:1].tolist()}).encode()
    sockets = set()
    for _ in range(3):
        connection.request("POST", "/predict", body)
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1


def test_sixteen_concurrent_clients_each_get_their_own_predictions(image_port, images):
    x, expected = images
    start = threading.Barrier(16)
    wrong: list[str] = []

    def client(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", image_port, timeout=60)
        body = json.dumps({"instances": [x[i].tolist()]}).encode()
        start.wait()
        for _ in range(10):
            connection.request("POST", "/predict", body)
            response = connection.getresponse()
            payload = json.loads(response.read())
            if response.status != 200 or not np.allclose(payload["predictions"], expected[i : i + 1], atol=1e-6):
                wrong.append(f"client {i}: {response.status} {payload}")
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_200_connections_opened_at_once_are_all_answered(image_port):
    assert answered_within(image_port, 200, seconds=3) == 200


def test_a_model_with_two_inputs_takes_objects_and_answers_an_object_per_row(scorer_port):
    status, payload = predict(
        scorer_port, [{"features": [1, 2, 3.5], "offset": 1}, {"features": [-5, 0, 0], "offset": 0}]
    )
    assert status == 200, payload
    assert payload["predictions"] == [{"total": 7.5, "sign": "positive"}, {"total": -5.0, "sign": "negative"}]


def test_an_instance_missing_an_input_gets_400_naming_it(scorer_port):
    status, payload = predict(scorer_port, [{"features": [1, 2, 3]}])
    assert status == 400
    assert "instance 0 is missing input(s) offset" in payload["error"]


def test_a_float_for_an_integer_input_gets_400_naming_the_type(scorer_port):
    status, payload = predict(scorer_port, [{"features": [1, 2, 3], "offset": 1.5}])
    assert status == 400
    assert "input 'offset': expected int32 values, got floats" in payload["error"]


def test_a_model_error_gets_500_with_its_message_and_the_server_keeps_serving(scorer_port):
    status, payload = predict(scorer_port, [{"features": [1, 2, 3], "offset": -1}])
    assert status == 500
    assert "offset must be >= 0" in payload["error"]
    status, payload = predict(scorer_port, [{"features": [1, 2, 3], "offset": 0}])
    assert (status, payload["predictions"]) == (200, [{"total": 6.0, "sign": "positive"}])


@pytest.fixture
def cli_server(scorer_dir, tmp_path):
    """A server started from the command line on port 0, and the port it announced."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(PROJECT_ROOT))
    with open(tmp_path / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.twin.vertex.serving", "--model-dir", str(scorer_dir), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            start_new_session=True,
        )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("LISTENING "), (tmp_path / "stderr.log").read_text()
        yield proc, int(line.split()[1])
    finally:
        stop_model_server(proc)
        proc.stdout.close()


def test_sigterm_stops_a_server_started_from_the_cli_with_status_0(cli_server):
    proc, port = cli_server
    assert call(port, "GET", "/health")[0] == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_start_model_server_raises_with_the_log_tail_when_there_is_no_saved_model(tmp_path):
    with pytest.raises(RuntimeError, match="no saved_model.pb"):
        start_model_server(tmp_path, tmp_path / "server.log")


def test_importing_the_module_does_not_import_tensorflow_or_numpy():
    code = "import sys, edge.twin.vertex.serving; print(sorted({'tensorflow', 'numpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    assert result.stdout.strip() == "[]"
