"""Vertex AI's request-response logging on the twin, through the real SDKs: the endpoint's logging config round
trip (create with it, update an endpoint that has none, get shows it) and the rows each predict writes to the
twin's BigQuery, read back with google-cloud-bigquery in Vertex's layout."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace

import pytest

from edge.config import ModelConfig, Monitoring
from edge.monitoring import request_logging
from edge.target import twin_target
from tests.support import upload_line_model

pytestmark = pytest.mark.timeout(300)


def model_config(dataset: str, rate: float = 1.0) -> ModelConfig:
    """A model of edge.yaml whose requests go to `dataset` at `rate`."""
    return ModelConfig(
        "line", "models/line", "line", "params.yaml", monitoring=Monitoring(sampling_rate=rate, dataset=dataset)
    )


@pytest.fixture(scope="module")
def bigquery_client(target):
    """google-cloud-bigquery pointed at the twin (by edge's target, as `invoke monitor` does)."""
    return target.bigquery_client()


@pytest.fixture(scope="module")
def line_model(session_vertex, line_model_uri):
    return upload_line_model(session_vertex, line_model_uri)


@pytest.fixture(scope="module")
def logged_endpoint(session_vertex, target, line_model):
    """An endpoint made with logging on (every request, to a dataset of its own) serving the line model."""
    model = model_config(f"logs_{uuid.uuid4().hex[:8]}")
    endpoint = session_vertex.Endpoint.create(
        display_name="line-logged", **request_logging.create_options(target.project, model)
    )
    endpoint.deploy(line_model, machine_type="n1-standard-2")
    yield endpoint, model
    endpoint.undeploy_all()
    endpoint.delete()


def rows_of(client, table: str, expected: int, timeout: float = 10) -> list:
    """The table's rows, once at least `expected` are there (the twin writes them in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(client.query_and_wait(f"SELECT * FROM `{table}` ORDER BY logging_time"))
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_an_endpoint_created_with_logging_shows_it_on_get(vertex, logged_endpoint, target):
    endpoint, model = logged_endpoint
    again = vertex.Endpoint(endpoint.resource_name)
    config = again.gca_resource.predict_request_response_logging_config
    assert config.enabled and config.sampling_rate == 1.0
    assert config.bigquery_destination.output_uri == request_logging.destination(target.project, model)
    assert request_logging.read(again).logs


def test_an_existing_endpoint_gets_logging_by_an_update_and_keeps_it(vertex, target):
    endpoint = vertex.Endpoint.create(display_name="line-later")
    assert not request_logging.read(endpoint).logs
    model = model_config(f"later_{uuid.uuid4().hex[:8]}", rate=0.5)
    assert request_logging.ensure(endpoint, target.project, model)
    fetched = vertex.Endpoint(endpoint.resource_name)
    assert request_logging.read(fetched) == request_logging.RequestLogging(
        True, 0.5, request_logging.destination(target.project, model)
    )
    assert not request_logging.ensure(fetched, target.project, model), "nothing to change the second time"
    assert request_logging.ensure(fetched, target.project, replace(model, monitoring=Monitoring(sampling_rate=0)))
    assert not request_logging.read(vertex.Endpoint(endpoint.resource_name)).logs
    endpoint.delete()


def test_enabling_logging_makes_the_dataset_and_table_as_vertex_does(logged_endpoint, bigquery_client, target):
    _, model = logged_endpoint
    table = bigquery_client.get_table(request_logging.destination(target.project, model).removeprefix("bq://"))
    assert [(f.name, f.field_type, f.mode) for f in table.schema] == [
        ("endpoint", "STRING", "NULLABLE"),
        ("deployed_model_id", "STRING", "NULLABLE"),
        ("logging_time", "TIMESTAMP", "NULLABLE"),
        ("request_id", "NUMERIC", "NULLABLE"),
        ("request_payload", "STRING", "REPEATED"),
        ("response_payload", "STRING", "REPEATED"),
    ]


def test_each_predict_is_one_row_in_vertexs_layout(logged_endpoint, bigquery_client, target):
    endpoint, model = logged_endpoint
    started = time.time()
    answers = [endpoint.predict(instances=[[float(x)], [x + 0.5]]) for x in range(5)]
    table = request_logging.destination(target.project, model).removeprefix("bq://")
    rows = rows_of(bigquery_client, table, 5)
    assert len(rows) == 5
    deployed = endpoint.list_models()[0].id
    for x, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        assert row["endpoint"] == endpoint.resource_name and row["deployed_model_id"] == deployed
        assert started - 1 <= row["logging_time"].timestamp() <= time.time()
        assert [json.loads(p) for p in row["request_payload"]] == [[float(x)], [x + 0.5]]
        assert [json.loads(p) for p in row["response_payload"]] == [list(p) for p in answer.predictions]
    assert len({row["request_id"] for row in rows}) == 5


def test_a_sampling_rate_of_zero_logs_nothing(vertex, target, line_model, bigquery_client):
    model = model_config(f"none_{uuid.uuid4().hex[:8]}")
    endpoint = vertex.Endpoint.create(
        display_name="line-sampled", **request_logging.create_options(target.project, model)
    )
    endpoint.deploy(line_model, machine_type="n1-standard-2")
    try:
        request_logging.ensure(
            endpoint, target.project, replace(model, monitoring=replace(model.monitoring, sampling_rate=0.0))
        )
        for _ in range(3):
            endpoint.predict(instances=[[1.0]])
        time.sleep(0.5)
        table = request_logging.destination(target.project, model).removeprefix("bq://")
        assert rows_of(bigquery_client, table, 1, timeout=0.5) == []
    finally:
        endpoint.undeploy_all()
        endpoint.delete()


@pytest.mark.parametrize(
    "config, words",
    [
        ({"enabled": True, "samplingRate": 1.5}, "sampling_rate must be in [0, 1]"),
        ({"enabled": True, "samplingRate": 1, "bigqueryDestination": {"outputUri": "gs://b/t"}}, "bq://project"),
        ({"enabled": "yes"}, "enabled must be a boolean"),
    ],
)
def test_a_wrong_logging_config_is_refused_with_a_reason(twin, config, words):
    import requests

    response = requests.post(
        f"{twin.vertex.url}/v1/projects/edge-twin/locations/us-central1/endpoints",
        json={"displayName": "wrong", "predictRequestResponseLoggingConfig": config},
    )
    assert response.status_code == 400 and words in response.json()["error"]["message"]


def test_rows_survive_a_restart_of_the_twin(tmp_path):
    """The request log flushes what predict queued when the twin stops; BigQuery keeps it in DuckDB."""
    from edge.twin.server import Twin
    from edge.twin.vertex.request_log import logging_config

    with Twin(tmp_path) as twin:
        name = "projects/edge-twin/locations/us-central1/endpoints/1"
        config = logging_config({"enabled": True, "samplingRate": 1.0}, name, "restart me")
        assert (
            config["bigqueryDestination"]["outputUri"] == "bq://edge-twin.logging_restart_me_1.request_response_logging"
        )
        twin.request_log.prepare(config)
        twin.request_log.submit(name, config, "7", b'{"instances": [[1, 2]]}', [{"class_id": 1}])
    table = "edge-twin.logging_restart_me_1.request_response_logging"
    with Twin(tmp_path) as twin:
        client = twin_target(twin.env).bigquery_client()
        rows = list(client.query_and_wait(f"SELECT deployed_model_id, request_payload FROM `{table}`"))
    assert [(r["deployed_model_id"], list(r["request_payload"])) for r in rows] == [("7", ["[1, 2]"])]  # as sent
