"""The request log on gcp (issue 9): the BigQuery dataset and tables Vertex AI's request-response logging writes
to, in Vertex's layout, partitioned by logging_time with edge.yaml's retention, readable by the monitor account
only; the endpoints' logging config; and the scheduled CircleCI workflow that runs `invoke monitor` daily."""

from __future__ import annotations

import re

import pytest
import yaml

from edge import config as edge_config
from edge import infra
from edge.twin.bigquery import REQUEST_RESPONSE_LOGGING_FIELDS
from tests.infra.conftest import INFRA, SAMPLE_EDGE_YAML, blocks, resources, unquote
from tests.infra.test_terraform_eval import error_text, plan_shadow, planned  # noqa: F401  (plan_shadow: fixture)

MODULE = INFRA / "modules" / "request_log"
CIRCLECI = INFRA.parent / ".circleci" / "config.yml"
DAY_MS = 24 * 60 * 60 * 1000


def sample(**monitoring) -> edge_config.Config:
    raw = yaml.safe_load(SAMPLE_EDGE_YAML)
    if monitoring:
        raw["monitoring"] = monitoring
    return edge_config.parse(raw, INFRA.parent)


def test_the_tables_have_the_columns_vertex_writes():
    """Schema v1 of https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging, as the twin's
    BigQuery has it (edge/twin/bigquery/schema.py)."""
    text = (MODULE / "main.tf").read_text()
    columns = re.findall(r'\{ name = "(\w+)", type = "(\w+)", mode = "(\w+)"', text)
    assert columns == [(f["name"], f["type"], f["mode"]) for f in REQUEST_RESPONSE_LOGGING_FIELDS]


def test_tables_are_partitioned_by_logging_time_and_refuse_unbounded_reads(parsed_tf):
    ((_, _, table),) = [r for r in resources(parsed_tf[MODULE / "main.tf"]) if r[0] == "google_bigquery_table"]
    (partitioning,) = table["time_partitioning"]
    assert unquote(partitioning["field"]) == "logging_time" and unquote(partitioning["type"]) == "DAY"
    assert table["require_partition_filter"] is True


def test_the_dataset_is_never_public(parsed_tf):
    ((_, _, dataset),) = [r for r in resources(parsed_tf[MODULE / "main.tf"]) if r[0] == "google_bigquery_dataset"]
    assert "access" not in dataset, "access through IAM bindings only (iam.tf)"
    members = [str(body.get("member")) for _, _, body in resources(parsed_tf[MODULE / "iam.tf"])]
    assert members and not [m for m in members if "allUsers" in m or "allAuthenticatedUsers" in m]


def test_the_monitor_account_may_only_read_and_write_its_reports(parsed_tf):
    grants = [
        (kind, unquote(body["role"]), body)
        for path, parsed in parsed_tf.items()
        for kind, _, body in resources(parsed)
        if "iam_member" in kind and '["monitor"]' in str(body)
    ]
    roles = {role for _, role, _ in grants}
    assert roles == {
        "roles/storage.objectViewer",
        "roles/storage.objectCreator",
        "roles/aiplatform.viewer",
        "roles/iam.workloadIdentityUser",
    }
    (creator,) = [body for _, role, body in grants if role == "roles/storage.objectCreator"]
    assert "/objects/monitoring/" in creator["condition"][0]["expression"]
    readers = [r for r in resources(parsed_tf[MODULE / "iam.tf"]) if r[1].startswith("readers")]
    assert {unquote(body["role"]) for _, _, body in readers} == {"roles/bigquery.dataViewer", "roles/bigquery.jobUser"}


def test_edge_yaml_reaches_the_dataset_the_tables_and_their_retention(plan_shadow):  # noqa: F811
    result, show = plan_shadow(infra.tfvars(sample(dataset="logs", retention_days=7)))
    assert result.returncode == 0, error_text(result)
    changes = {
        c["address"]: c["change"]["after"]["input"] for c in show["resource_changes"] if c["type"] == "terraform_data"
    }
    dataset = changes["module.request_log.terraform_data.google_bigquery_dataset__this"]
    assert dataset["dataset_id"] == "logs" and dataset["default_partition_expiration_ms"] == 7 * DAY_MS
    tables = {a: v for a, v in changes.items() if "google_bigquery_table__requests" in a}
    assert sorted(v["table_id"] for v in tables.values()) == ["digits_requests", "fashion_requests"]
    assert all(v["time_partitioning"][0]["expiration_ms"] == 7 * DAY_MS for v in tables.values())
    assert {
        f'module.vertex_endpoint["{m}"].terraform_data.google_vertex_ai_endpoint__this' for m in ("fashion", "digits")
    } <= planned(show)
    readers = 'module.request_log.terraform_data.google_bigquery_dataset_iam_member__readers["monitor"]'
    assert changes[readers]["role"] == "roles/bigquery.dataViewer"


@pytest.mark.parametrize(
    ("tfvars", "message"),
    [
        ({"monitoring_dataset": "edge-logs"}, "monitoring_dataset must be a BigQuery dataset id"),
        ({"monitoring_retention_days": 0}, "monitoring_retention_days must be a whole number of days"),
        (
            {"models": {"fashion": {"endpoint": "fashion", "request_log_sampling_rate": 2}}},
            "request_log_sampling_rate a number from 0 to 1",
        ),
    ],
)
def test_the_root_module_refuses_wrong_monitoring_values(plan_shadow, tfvars, message):  # noqa: F811
    result, _ = plan_shadow({**infra.tfvars(sample()), **tfvars})
    assert result.returncode == 1 and message in error_text(result)


def test_endpoints_log_to_their_models_table_and_terraform_leaves_later_changes_to_deploy():
    text = (INFRA / "modules" / "vertex_endpoint" / "main.tf").read_text()
    assert 'dynamic "predict_request_response_logging_config"' in text
    assert "ignore_changes = [predict_request_response_logging_config]" in text
    root = (INFRA / "main.tf").read_text()
    assert "request_log_table         = module.request_log.tables[each.key]" in root


def test_a_daily_schedule_runs_invoke_monitor_on_gcp_and_drift_fails_the_job():
    config = yaml.safe_load(CIRCLECI.read_text())
    workflow = config["workflows"]["monitor"]
    assert {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]} in workflow["when"]["and"]
    ((name, entry),) = (next(iter(job.items())) for job in workflow["jobs"])
    assert name == "monitor" and entry["context"] == ["edge-gcp"] and entry["filters"]["branches"]["only"] == "main"
    steps = config["jobs"]["monitor"]["steps"]
    assert {"google-credentials": {"service_account": "GCP_MONITOR_SA"}} in steps
    commands = [s["run"]["command"] for s in steps if isinstance(s, dict) and "run" in s]
    assert "./edge.sh monitor --target gcp" in commands[0] and 'exit "$(cat /tmp/monitor-exit-code)"' in commands[-1]
    assert config["workflows"]["edge"]["when"] == {
        "not": {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]}
    }, "the schedule runs the monitor only, not the whole pipeline"


def test_the_root_outputs_name_the_monitor_account_and_the_tables(parsed_tf):
    outputs = blocks(parsed_tf[INFRA / "outputs.tf"], "output")
    assert "request_logs" in outputs
    assert "monitor" in (INFRA / "outputs.tf").read_text().split('output "service_accounts"')[1].split("output")[0]
