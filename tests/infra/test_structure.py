"""infra/ parsed with python-hcl2 (no Terraform, no provider): the layout and rules of STYLE.md and
issue 4, and the contract between infra/ and edge's Python (tfvars in, outputs out)."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from edge import infra
from tests.infra.conftest import INFRA, MODULES, blocks, resources, unquote
from tests.support import ROOT

MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
IAP_RANGE = "35.235.240.0/20"
# Variables whose wrong value Terraform would only discover at apply time: each needs a validation block.
VALIDATED = re.compile(r"(project|region|zone|bucket|name|cidr|prefix|image|invokers|machine_type|service|_id$)")


def merged(parsed_tf, directory, kind):
    """Named blocks of `kind` from every .tf file directly in `directory`."""
    found = {}
    for path, parsed in parsed_tf.items():
        if path.parent == directory:
            found.update(blocks(parsed, kind))
    return found


def strings(value):
    """Every string inside a parsed HCL value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_each_module_has_the_four_files_and_a_readme(module):
    missing = [name for name in MODULE_FILES if not (module / name).exists()]
    assert not missing, f"{module.name} lacks {missing}"


def test_the_issue_modules_all_exist():
    assert {m.name for m in MODULES} >= {
        "bucket",
        "service_accounts",
        "experiment_tracker",
        "vertex_endpoint",
        "web_service",
    }


def test_every_variable_has_a_type_and_a_description(parsed_tf):
    for path, parsed in parsed_tf.items():
        for name, body in blocks(parsed, "variable").items():
            assert "type" in body, f"{path.relative_to(ROOT)}: variable {name} has no type"
            assert unquote(body.get("description", "")).strip(), (
                f"{path.relative_to(ROOT)}: variable {name} has no description"
            )


def test_variables_that_can_be_wrong_are_validated(parsed_tf):
    for path, parsed in parsed_tf.items():
        for name, body in blocks(parsed, "variable").items():
            if VALIDATED.search(name) and body.get("type") in ("string", "${list(string)}", "${map(string)}"):
                assert body.get("validation"), f"{path.relative_to(ROOT)}: variable {name} has no validation"


def test_every_output_has_a_description(parsed_tf):
    for path, parsed in parsed_tf.items():
        for name, body in blocks(parsed, "output").items():
            assert unquote(body.get("description", "")).strip(), (
                f"{path.relative_to(ROOT)}: output {name} has no description"
            )


def test_provider_versions_are_bounded_above_and_below(parsed_tf):
    for path, parsed in parsed_tf.items():
        for terraform in parsed.get("terraform", []):
            assert "<" in terraform.get("required_version", ""), f"{path}: unbounded required_version"
            for providers in terraform.get("required_providers", []):
                for name, spec in providers.items():
                    if name.startswith("__"):
                        continue
                    version = spec.get("version", "")
                    assert ">=" in version and "<" in version, (
                        f"{path}: provider {name} version {version!r} not bounded"
                    )


def test_the_gcs_backend_is_empty_and_configured_at_init(parsed_tf):
    backends = [
        (path, backend)
        for path, parsed in parsed_tf.items()
        for terraform in parsed.get("terraform", [])
        for backend in terraform.get("backend", [])
    ]
    assert len(backends) == 1, f"exactly one backend block, in the root module: {backends}"
    path, backend = backends[0]
    assert path.parent == INFRA
    assert list(backend) == ['"gcs"'] and not {k: v for k, v in backend['"gcs"'].items() if k != "__is_block__"}


def test_iam_bindings_live_in_iam_tf_or_ci_tf(parsed_tf):
    for path, parsed in parsed_tf.items():
        for kind, name, _ in resources(parsed):
            if "_iam_" in kind:
                assert path.name in ("iam.tf", "ci.tf"), f"{path.relative_to(ROOT)}: {kind}.{name} belongs in iam.tf"


def test_no_resource_grants_all_users_or_all_authenticated_users():
    for path in INFRA.rglob("*"):
        if path.suffix in (".tf", ".tftpl", ".j2"):
            text = path.read_text()
            code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "//")))
            for member in ("allUsers", "allAuthenticatedUsers"):
                for line in code.splitlines():
                    if member in line:
                        # only the validations that refuse them may name them
                        assert "error_message" in line or "contains([" in line, (
                            f"{path.relative_to(ROOT)}: {line.strip()}"
                        )


def test_no_firewall_admits_the_internet(parsed_tf):
    firewalls = [
        (path, name, body)
        for path, parsed in parsed_tf.items()
        for kind, name, body in resources(parsed)
        if kind == "google_compute_firewall"
    ]
    assert firewalls, "the tracker's network has firewall rules"
    for _path, name, body in firewalls:
        assert unquote(body.get("direction")) == "INGRESS"
        for source in body["source_ranges"]:
            source = unquote(source)
            if source.startswith("${"):
                assert "vertex_peering" in source, f"{name}: computed source {source} must be the peered Vertex range"
                continue
            network = ipaddress.ip_network(source)
            assert network.prefixlen > 0 and source == IAP_RANGE, f"{name}: ingress from {source}"


def test_no_resource_mentions_0_0_0_0_slash_0():
    for path in INFRA.rglob("*.tf"):
        assert "0.0.0.0/0" not in path.read_text(), f"{path.relative_to(ROOT)} admits 0.0.0.0/0"


def test_the_tracker_vm_has_no_external_ip(parsed_tf):
    vms = [
        body
        for parsed in parsed_tf.values()
        for kind, _, body in resources(parsed)
        if kind == "google_compute_instance"
    ]
    assert len(vms) == 1
    for interface in vms[0]["network_interface"]:
        assert "access_config" not in interface


def test_the_bucket_is_private_versioned_and_regional(parsed_tf):
    parsed = parsed_tf[INFRA / "modules" / "bucket" / "main.tf"]
    ((_, _, bucket),) = [r for r in resources(parsed) if r[0] == "google_storage_bucket"]
    assert bucket["uniform_bucket_level_access"] is True
    assert unquote(bucket["public_access_prevention"]) == "enforced"
    assert bucket["versioning"][0]["enabled"] is True
    assert any('"staging/"' in rule["condition"][0].get("matches_prefix", []) for rule in bucket["lifecycle_rule"])
    root = blocks(parsed_tf[INFRA / "main.tf"], "module")["bucket"]
    assert root["location"] == "${var.region}"


def test_no_service_account_key_is_created(parsed_tf):
    kinds = {kind for parsed in parsed_tf.values() for kind, _, _ in resources(parsed)}
    assert "google_service_account_key" not in kinds


def test_the_root_module_only_composes(parsed_tf):
    root = [
        (kind, name)
        for path, parsed in parsed_tf.items()
        if path.parent == INFRA
        for kind, name, _ in resources(parsed)
    ]
    assert root == [("google_project_service", "required")], "the root module declares modules, not resources"


def test_every_module_input_the_root_passes_is_declared(parsed_tf):
    for name, call in merged(parsed_tf, INFRA, "module").items():
        directory = (INFRA / unquote(call["source"])).resolve()
        declared = merged(parsed_tf, directory, "variable")
        passed = set(call) - {"source", "count", "for_each", "depends_on", "providers", "__is_block__"}
        assert passed <= set(declared), f"module {name} does not declare {sorted(passed - set(declared))}"
        required = {v for v, body in declared.items() if "default" not in body}
        assert required <= passed, f"module {name} is not given {sorted(required - passed)}"


def test_rendered_tfvars_only_set_declared_root_variables(sample_config, parsed_tf):
    declared = set(blocks(parsed_tf[INFRA / "variables.tf"], "variable"))
    values = infra.tfvars(sample_config)
    assert set(values) <= declared, f"undeclared: {sorted(set(values) - declared)}"
    required = {"project", "region", "bucket", "models"}
    assert required <= set(values)


def test_rendered_tfvars_carry_edge_yaml_and_are_valid_json(sample_config):
    path = infra.render_tfvars(sample_config)
    assert path == sample_config.root.resolve() / ".edge" / "infra" / "terraform.tfvars.json"
    values = json.loads(path.read_text())
    assert values["project"] == "edge-sample-project" and values["region"] == "europe-west4"
    assert values["models"] == {"fashion": {"endpoint": "fashion"}, "digits": {"endpoint": 'digits "v2"'}}
    assert values["tracker_zone"] == "europe-west4-a" and values["tracker_machine_type"] == "e2-medium"
    assert values["web_invokers"] == ["user:ana@example.com", "group:ml@example.com"]
    assert values["web_image"].endswith("fashion-web:1")


def test_rendered_tfvars_hold_no_secret(sample_config):
    values = infra.tfvars(sample_config)
    for key in values:
        assert not re.search(r"password|secret|token|key|credential", key, re.I), key
    assert not re.search(r"password|BEGIN .*PRIVATE KEY", json.dumps(values), re.I)


def test_the_outputs_python_reads_are_declared(parsed_tf):
    declared = blocks(parsed_tf[INFRA / "outputs.tf"], "output")
    read = set(infra.OUTPUTS_READ)
    for path in (ROOT / "edge").rglob("*.py"):  # also what other modules read from edge.infra.outputs()
        read |= set(re.findall(r"outputs\w*\s*(?:\[|\.get\()\s*[\"'](\w+)[\"']", path.read_text()))
    assert read <= set(declared), f"not declared in infra/outputs.tf: {sorted(read - set(declared))}"
    tracker_keys = set(re.findall(r"(\w+) = module\.experiment_tracker", declared["tracker"]["value"]))
    assert set(infra.TRACKER_KEYS) <= tracker_keys, (
        f"tracker output lacks {sorted(set(infra.TRACKER_KEYS) - tracker_keys)}"
    )


def test_the_backend_prefix_and_bucket_come_from_edge_yaml(sample_config):
    ws = infra.workspace(sample_config)
    assert ws.backend == {"bucket": "edge-sample-bucket", "prefix": infra.STATE_PREFIX}
