"""edge.yaml's `monitoring:` section: defaults, a model's own section over the top-level one, one-line errors,
and the values Terraform gets (dataset, retention, each model's table and sampling rate)."""

from __future__ import annotations

import pytest
import yaml

from edge import config as edge_config
from edge import infra
from tests.infra.conftest import SAMPLE_EDGE_YAML


def parse(top=None, fashion=None) -> edge_config.Config:
    raw = yaml.safe_load(SAMPLE_EDGE_YAML)
    if top is not None:
        raw["monitoring"] = top
    if fashion is not None:
        raw["models"]["fashion"]["monitoring"] = fashion
    return edge_config.parse(raw)


def test_without_a_section_every_request_is_logged_to_edge_monitoring():
    monitoring = parse().model("fashion").monitoring
    assert monitoring == edge_config.Monitoring()
    assert (monitoring.sampling_rate, monitoring.dataset, monitoring.table_for("fashion")) == (
        1.0,
        "edge_monitoring",
        "fashion_requests",
    )


def test_a_models_section_overrides_the_top_level_one_and_keeps_the_rest():
    config = parse(
        top={"sampling_rate": 0.5, "retention_days": 7, "thresholds": {"confidence": 0.3}},
        fashion={"table": "fashion_log", "thresholds": {"contrast": 0.4}, "min_rows": 50},
    )
    fashion, digits = config.model("fashion").monitoring, config.model("digits").monitoring
    assert fashion.sampling_rate == digits.sampling_rate == 0.5 and fashion.retention_days == 7
    assert fashion.table_for("fashion") == "fashion_log" and digits.table_for("digits") == "digits_requests"
    assert fashion.thresholds == {"confidence": 0.3, "contrast": 0.4} and digits.thresholds == {"confidence": 0.3}
    assert fashion.threshold("contrast", "numeric") == 0.4
    assert fashion.threshold("margin", "numeric") == fashion.numeric_threshold
    assert fashion.threshold("predicted_class", "categorical") == fashion.categorical_threshold
    assert (fashion.min_rows, digits.min_rows) == (50, 200)


def test_the_values_reach_terraform():
    values = infra.tfvars(parse(top={"dataset": "logs", "retention_days": 90}, fashion={"sampling_rate": 0.25}))
    assert (values["monitoring_dataset"], values["monitoring_retention_days"]) == ("logs", 90)
    assert values["models"]["fashion"]["request_log_sampling_rate"] == 0.25
    assert values["models"]["digits"]["request_log_table"] == "digits_requests"


@pytest.mark.parametrize(
    ("top", "fashion", "message"),
    [
        ({"sampling_rate": 1.5}, None, "edge.yaml.monitoring.sampling_rate must be a number between 0 and 1, got 1.5"),
        ({"sampling_rate": True}, None, "edge.yaml.monitoring.sampling_rate must be a number between 0 and 1"),
        ({"dataset": "edge-logs"}, None, "edge.yaml.monitoring.dataset must be a BigQuery name"),
        ({"retention_days": 0}, None, "edge.yaml.monitoring.retention_days must be a whole number from 1 to 3650"),
        ({"min_rows": "many"}, None, "edge.yaml.monitoring.min_rows must be a whole number"),
        ({"numeric_threshold": 0}, None, "edge.yaml.monitoring.numeric_threshold must be a number above 0"),
        ({"thresholds": {"confidence": 2}}, None, "edge.yaml.monitoring.thresholds.confidence must be a number"),
        ({"thresholds": [1]}, None, "edge.yaml.monitoring.thresholds must map feature names to thresholds"),
        ({"sampling": 1}, None, "edge.yaml.monitoring: unknown field(s) ['sampling']"),
        ("yes", None, "edge.yaml.monitoring must be a mapping"),
        (None, {"dataset": "other"}, "edge.yaml.models.fashion.monitoring.dataset: set it in the top-level"),
        (None, {"table": "a.b"}, "edge.yaml.models.fashion.monitoring.table must be a BigQuery name"),
    ],
)
def test_a_wrong_value_is_one_line_that_names_the_field(top, fashion, message):
    with pytest.raises(edge_config.ConfigError) as raised:
        parse(top=top, fashion=fashion)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
