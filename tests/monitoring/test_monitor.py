"""`invoke monitor` on a fashion model deployed on a user repository's twin, with real traffic logged by the twin:
exit 0 on unshifted traffic, 3 on a shifted one, and one line for every problem a user can fix."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.config import Monitoring
from edge.monitoring import request_logging
from tests.support import invoke
from tests.web.conftest import undeployed_repo  # noqa: F401  (a repository after `invoke init` only)

pytestmark = pytest.mark.timeout(900)


def one_line_error(result, code: int = 1) -> str:
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: "), result.stderr
    return lines[0]


def monitor(monitored, window, *extra):
    return invoke(monitored.repo, "monitor", "--since", window[0], "--until", window[1], *extra)


def test_deploy_turned_request_logging_on_as_edge_yaml_says(monitored):
    config = request_logging.read(monitored.project.vertex().Endpoint(monitored.endpoint.resource_name))
    model = monitored.project.config.model("fashion")
    assert config == request_logging.RequestLogging(True, 1.0, request_logging.destination("edge-twin", model))


def test_the_trained_version_carries_its_reference(deployed_repo):  # noqa: F811
    """The evaluate stage of `invoke train` stored the reference of the held-out split, with the version's own
    predictions, and put its URI on the version's evaluation (not the fixture's fallback)."""
    from edge.monitoring.monitor import _evaluation_reference
    from edge.monitoring.reference import load_reference
    from edge.project import open_project

    project = open_project(deployed_repo)
    endpoint = project.vertex().Endpoint(project.state.read().model("fashion").endpoint)
    deployed = endpoint.list_models()[0]
    uri = _evaluation_reference(project, f"{deployed.model}@{deployed.model_version_id}")
    assert uri and uri.endswith("/monitoring/reference.json"), uri
    reference = load_reference(project.target.storage_client(), uri)
    assert reference["instances"] == 10_000 and "predicted_class" in reference["features"]


def test_unshifted_traffic_raises_no_alert_and_exits_0(monitored, unshifted_window):
    result = monitor(monitored, unshifted_window)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fashion: 500 logged instances (500 requests)" in result.stdout
    assert "border_intensity" in result.stdout and "DRIFT" not in result.stdout
    local, remote = (line.strip() for line in result.stdout.strip().splitlines()[-2:])
    written = json.loads((Path(local) / "result.json").read_text())
    assert written["status"] == "ok" and written["versions"][0]["instances"] == 500
    assert (Path(local) / "report.html").exists()
    assert monitored.project.bucket.blob(f"{remote.split('/', 3)[3]}/report.html").exists()


def test_shifted_traffic_alerts_and_exits_3(monitored, inverted_window):
    line = one_line_error(monitor(monitored, inverted_window), code=3)
    assert line.startswith("edge: fashion drifted (version ") and "border_intensity" in line


def test_a_window_with_too_few_requests_says_so_and_exits_0(monitored):
    result = monitor(monitored, ("2020-01-01T00:00:00Z", "2020-01-01T01:00:00Z"))
    assert result.returncode == 0, result.stderr
    assert "too few logged instances to compare: at least 200 per version" in result.stdout


def test_malformed_rows_are_counted_and_skipped(monitored):
    rng = np.random.default_rng(9)
    window = monitored.send(monitored.x[rng.choice(len(monitored.x), 300, replace=False)])
    client = monitored.project.target.bigquery_client()
    middle = window[0]
    deployed = monitored.endpoint.list_models()[0].id
    bad = [
        {
            "deployed_model_id": deployed,
            "logging_time": middle,
            "request_payload": ["not json"],
            "response_payload": [],
        },
        {"deployed_model_id": deployed, "logging_time": middle, "request_payload": ["[1, 2]"], "response_payload": []},
        {"deployed_model_id": None, "logging_time": middle, "request_payload": ["[1]"], "response_payload": ["{}"]},
    ]
    assert client.insert_rows_json(monitored.table, bad) == []
    result = monitor(monitored, window, "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["malformed_rows"], found["rows"], found["versions"][0]["instances"]) == (3, 303, 300)


def test_an_unknown_model_is_one_line(monitored):
    assert "no model 'nope' under models:" in one_line_error(invoke(monitored.repo, "monitor", "--model", "nope"))


def test_a_bad_window_is_one_line(monitored):
    assert "--since must be a duration such as 30m" in one_line_error(
        invoke(monitored.repo, "monitor", "--since", "soon")
    )


def test_an_endpoint_that_does_not_log_says_how_to_turn_it_on(monitored):
    endpoint = monitored.project.vertex().Endpoint(monitored.endpoint.resource_name)
    model = monitored.project.config.model("fashion")
    request_logging.ensure(endpoint, "edge-twin", replace(model, monitoring=Monitoring(sampling_rate=0)))
    try:
        line = one_line_error(invoke(monitored.repo, "monitor"))
    finally:
        request_logging.ensure(monitored.project.vertex().Endpoint(endpoint.resource_name), "edge-twin", model)
    assert "does not log its requests: set monitoring.sampling_rate above 0 in edge.yaml, then `invoke deploy`" in line


def test_a_missing_request_log_table_is_one_line(monitored):
    """The endpoint logs to a dataset that was deleted since (the session's own table is left alone)."""
    endpoint = monitored.project.vertex().Endpoint(monitored.endpoint.resource_name)
    model = monitored.project.config.model("fashion")
    elsewhere = replace(model, monitoring=replace(model.monitoring, dataset="deleted_logs"))
    request_logging.ensure(endpoint, "edge-twin", elsewhere)  # the twin makes the table, as Vertex does
    monitored.project.target.bigquery_client().delete_dataset("edge-twin.deleted_logs", delete_contents=True)
    try:
        line = one_line_error(invoke(monitored.repo, "monitor"))
    finally:
        request_logging.ensure(monitored.project.vertex().Endpoint(endpoint.resource_name), "edge-twin", model)
    assert "no request log table bq://edge-twin.deleted_logs.fashion_requests" in line


def test_a_model_without_an_endpoint_is_one_line(undeployed_repo):  # noqa: F811
    line = one_line_error(invoke(undeployed_repo, "monitor"))
    assert line == "edge: fashion has no endpoint yet: run `invoke deploy`"
