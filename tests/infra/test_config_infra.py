"""edge.yaml's `infra:` section (issue 13, item 5): Terraform's state prefix, the name prefix and the CircleCI
ids live in edge.yaml, are validated once where they enter (edge/config.py, one-line errors), reach Terraform
through the rendered tfvars and the backend settings, and CI refuses to plan without the CircleCI ids."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from edge import config as edge_config
from edge import infra
from tests.infra.conftest import SAMPLE_EDGE_YAML

UUID = "0b9e6a52-6a1c-4c8e-9a39-3f1b7f1d2c01"


def parse_with_infra(section) -> edge_config.Config:
    raw = yaml.safe_load(SAMPLE_EDGE_YAML)
    if section is None:
        raw.pop("infra")
    else:
        raw["infra"] = section
    return edge_config.parse(raw)


def test_without_an_infra_section_the_defaults_are_todays_names():
    config = parse_with_infra(None)
    assert config.infra == edge_config.InfraConfig()
    assert (config.infra.state_prefix, config.infra.name_prefix) == ("terraform/state", "edge")
    assert not (config.infra.circleci_org_id or config.infra.circleci_project_id or config.infra.circleci_context_id)


def test_the_sample_infra_section_reaches_the_tfvars_and_the_backend(sample_config):
    values = infra.tfvars(sample_config)
    assert values["name_prefix"] == "edge-sample"
    assert values["circleci_org_id"] == "0b9e6a52-6a1c-4c8e-9a39-3f1b7f1d2c01"
    assert values["circleci_project_id"] == "5d0c2f7e-8a14-4b6e-b1b1-7c2d9e0a4f12"
    assert values["circleci_context_id"] == "9a7f3c21-4e5d-4b8a-8c6e-1f2a3b4c5d6e"
    assert "state_prefix" not in values, "a backend setting, not a variable"
    assert infra.workspace(sample_config).backend["prefix"] == "infra/terraform"


def test_without_federation_the_tfvars_say_so_explicitly():
    """Empty ids are rendered as "" (not left out), so the rendered file shows what Terraform will do."""
    values = infra.tfvars(parse_with_infra({}))
    assert (values["circleci_org_id"], values["circleci_project_id"], values["circleci_context_id"]) == ("", "", "")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"circleci_org_id": "not-a-uuid"}, "edge.yaml.infra.circleci_org_id must be a UUID from CircleCI's settings"),
        (
            {"circleci_org_id": UUID},
            "edge.yaml.infra: set all of circleci_org_id, circleci_project_id, circleci_context_id",
        ),
        ({"name_prefix": "Edge"}, "edge.yaml.infra.name_prefix must be 2-21 lower-case letters"),
        ({"name_prefix": "gcp"}, "edge.yaml.infra.name_prefix may not be gcp"),
        ({"state_prefix": "/terraform/state/"}, "edge.yaml.infra.state_prefix must be an object prefix"),
        ({"state_prefix": 3}, "edge.yaml.infra.state_prefix must be a str"),
        ({"prefix": "x"}, "edge.yaml.infra: unknown field(s) ['prefix']"),
        ("edge", "edge.yaml.infra must be a mapping"),
    ],
    ids=["not-uuid", "one-id-alone", "upper-case", "gcp", "slashes", "number", "unknown", "not-mapping"],
)
def test_a_wrong_infra_section_is_one_line_naming_the_field(section, message):
    with pytest.raises(edge_config.ConfigError) as error:
        parse_with_infra(section)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_in_circleci_a_plan_without_the_circleci_ids_is_refused():
    """The plan would propose destroying the pool CI signs in with; an approved apply would lock CI out."""
    config = parse_with_infra({})
    with pytest.raises(infra.InfraError, match="would destroy CI's own workload identity federation"):
        infra.check_ci_federation(config, {"CIRCLECI": "true"})
    infra.check_ci_federation(config, {})  # a laptop may run without federation
    infra.check_ci_federation(parse_with_infra(yaml.safe_load(SAMPLE_EDGE_YAML)["infra"]), {"CIRCLECI": "true"})


def test_infra_plan_checks_federation_before_calling_terraform(sample_config, monkeypatch):
    called = []
    monkeypatch.setattr(infra, "check_prerequisites", lambda config: None)
    monkeypatch.setattr(infra, "terraform_init", lambda ws: called.append(ws))
    monkeypatch.setenv("CIRCLECI", "true")
    config = replace(parse_with_infra({}), root=sample_config.root)
    with pytest.raises(infra.InfraError, match="circleci_org_id"):
        infra.plan_infra(config, echo=lambda line: None)
    assert called == []
