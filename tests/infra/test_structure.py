"""infra/ parsed with python-hcl2 (no Terraform, no provider): the layout and rules of STYLE.md and
issue 4, and the contract between infra/ and edge's Python (tfvars in, outputs out)."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

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


def root_fed_inputs(parsed_tf, namespaces: str = "var|local|each") -> dict[Path, set[str]]:
    """Module directory -> the variables the root module sets straight from one of its variables or locals
    (`name = var.x`, `each.value.x` of a for_each over a variable), or, with `module` among the namespaces, from
    another module's output: their values enter at the root, which validates them."""
    fed: dict[Path, set[str]] = {}
    reference = re.compile(rf"\$\{{({namespaces})\.[\w.\[\]\"-]+\}}")
    for call in merged(parsed_tf, INFRA, "module").values():
        directory = (INFRA / unquote(call["source"])).resolve()
        fed.setdefault(directory, set()).update(
            name
            for name, value in call.items()
            if name not in ("for_each", "count") and isinstance(value, str) and reference.fullmatch(value)
        )
    return fed


def test_variables_that_can_be_wrong_are_validated_where_they_enter(parsed_tf):
    """Root variables (edge.yaml's values) and module variables the root does not set from its own values."""
    fed = root_fed_inputs(parsed_tf, "var|local|each|module")
    for path, parsed in parsed_tf.items():
        for name, body in blocks(parsed, "variable").items():
            if name in fed.get(path.parent.resolve(), set()):
                continue
            if VALIDATED.search(name) and body.get("type") in ("string", "${list(string)}", "${map(string)}"):
                assert body.get("validation"), f"{path.relative_to(ROOT)}: variable {name} has no validation"


def test_inputs_validated_at_the_root_are_not_validated_again_in_a_module(parsed_tf):
    """STYLE.md: validate an input once, where it enters. A second copy of a rule drifts (issue 13: the root's
    region rule refused europe-west10 while edge.yaml accepted it, and four modules repeated it)."""
    fed = root_fed_inputs(parsed_tf)
    for directory, names in fed.items():
        declared = merged(parsed_tf, directory, "variable")
        again = sorted(name for name in names if declared[name].get("validation"))
        assert not again, f"{directory.relative_to(ROOT)} validates {again} again"


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


def test_objects_deleted_by_age_in_the_versioned_bucket_are_removed_for_good(parsed_tf):
    """In a versioned bucket a Delete on age only makes the live version noncurrent; every prefix with such a
    rule also needs a Delete on noncurrent time (issue 13, item 6)."""
    parsed = parsed_tf[INFRA / "modules" / "bucket" / "main.tf"]
    ((_, _, bucket),) = [r for r in resources(parsed) if r[0] == "google_storage_bucket"]
    assert bucket["versioning"][0]["enabled"] is True
    rules = [(rule["condition"][0], rule["action"][0]) for rule in bucket["lifecycle_rule"]]
    deletes = [condition for condition, action in rules if unquote(action["type"]) == "Delete"]
    by_age = {tuple(condition.get("matches_prefix", [])) for condition in deletes if "age" in condition}
    by_noncurrent_time = {
        tuple(condition.get("matches_prefix", [])) for condition in deletes if "days_since_noncurrent_time" in condition
    }
    assert by_age, "the staging/ rule exists"
    assert by_age <= by_noncurrent_time, (
        f"prefixes deleted by age but never for good: {sorted(by_age - by_noncurrent_time)}"
    )


def test_the_tracker_reads_only_the_experiments_prefix_of_the_bucket(parsed_tf):
    """Issue 13, item 4 (infrastructure side): the VM may read the Sacred runs edge writes to the bucket (to
    fill Omniboard from them), read-only and only under experiments/: a conditional bucket-level grant."""
    parsed = parsed_tf[INFRA / "modules" / "experiment_tracker" / "iam.tf"]
    grants = [(name, body) for kind, name, body in resources(parsed) if kind == "google_storage_bucket_iam_member"]
    assert [name for name, _ in grants] == ["tracker_reads_experiments"]
    ((_, grant),) = grants
    assert unquote(grant["role"]) == "roles/storage.objectViewer"
    assert grant["condition"][0]["expression"] == "${local.experiments_condition}"
    main = (INFRA / "modules" / "experiment_tracker" / "main.tf").read_text()
    assert "objects/${var.experiments_prefix}" in main and "objectListPrefix" in main
    root = blocks(parsed_tf[INFRA / "main.tf"], "module")["experiment_tracker"]
    assert root["bucket"] == "${module.bucket.name}"


def test_nothing_is_left_of_the_path_from_training_to_mongodb(parsed_tf):
    """Training writes runs to the bucket and the VM's importer copies them into MongoDB, so the Sacred URI
    secret, its readers, the Vertex peering, its range and firewall rule, and their outputs are gone, from
    Terraform (resources, variables, outputs, module arguments, templates) and from what edge reads."""
    removed = re.compile(
        r"sacred.mongo.uri|sacred_readers|vertex_network|vertex_to_mongo|vertex.peering|servicenetworking"
        r"|service_networking"
    )
    for path in INFRA.rglob("*"):
        if path.suffix in (".tf", ".tftpl", ".j2"):
            found = sorted(set(removed.findall(path.read_text())))
            assert not found, f"{path.relative_to(ROOT)} mentions {found}"
    kinds = {kind for parsed in parsed_tf.values() for kind, _, _ in resources(parsed)}
    assert not {"google_service_networking_connection", "google_compute_global_address"} & kinds
    assert not [key for key in infra.TRACKER_KEYS if removed.search(key)]
    jobs = (ROOT / "edge" / "training" / "jobs.py").read_text()
    assert "vertex_network" not in jobs and "network=" not in jobs


def test_the_deployer_may_poll_cloud_run_operations_and_nothing_more_at_project_level(parsed_tf):
    """google-cloud-run's update_service(...).result() polls projects/P/locations/L/operations/ID, which the
    service-level run.developer grant does not cover (issue 13, item 7)."""
    parsed = parsed_tf[INFRA / "modules" / "service_accounts" / "iam.tf"]
    roles = {name: body for kind, name, body in resources(parsed) if kind == "google_project_iam_custom_role"}
    assert [unquote(p) for p in roles["run_operations_reader"]["permissions"]] == ["run.operations.get"]
    members = {name: body for kind, name, body in resources(parsed) if kind == "google_project_iam_member"}
    grant = members["deployer_polls_run_operations"]
    assert grant["role"] == "${google_project_iam_custom_role.run_operations_reader.id}"
    assert grant["member"] == '${google_service_account.this["deployer"].member}'


def test_ci_federation_maps_a_subject_that_fits_and_trusts_main_in_the_context_only(parsed_tf):
    """Issue 13, items 2 and 9. google.subject may not exceed 127 bytes: the V1 token's sub
    (org/<uuid>/project/<uuid>/user/<uuid>) is exactly 127; the mapping cuts the V2 suffix off. Only tokens
    of the project, on main, in the restricted context, not SSH reruns, are accepted; the CI accounts (deployer,
    ci-infra, and the monitor of the scheduled monitoring job) may be impersonated from main only."""
    parsed = parsed_tf[INFRA / "modules" / "service_accounts" / "ci.tf"]
    ((_, _, provider),) = [r for r in resources(parsed) if r[0] == "google_iam_workload_identity_pool_provider"]
    mapping = {unquote(k): unquote(v) for k, v in provider["attribute_mapping"].items() if not k.startswith("__")}
    assert mapping["google.subject"] == "assertion.sub.split('/vcs-origin/')[0]"
    uuid = "0b9e6a52-6a1c-4c8e-9a39-3f1b7f1d2c01"
    v1_sub = f"org/{uuid}/project/{uuid}/user/{uuid}"
    v2_sub = f"{v1_sub}/vcs-origin/github.com/an-org/a-repository/vcs-ref/refs/heads/main"
    assert len(v1_sub.encode()) == 127 and len(v2_sub.encode()) > 127
    assert len(v2_sub.split("/vcs-origin/")[0].encode()) <= 127
    condition = (INFRA / "modules" / "service_accounts" / "ci.tf").read_text()
    for clause in (
        "oidc.circleci.com/project-id",
        "== 'refs/heads/main'",
        "oidc.circleci.com/context-ids",
        "ssh-rerun",
    ):
        assert clause in condition, clause
    bindings = {name: body for kind, name, body in resources(parsed) if kind == "google_service_account_iam_member"}
    assert set(bindings) == {"ci_main_is_deployer", "ci_main_is_infra", "ci_main_is_monitor"}
    for name, body in bindings.items():
        assert unquote(body["member"]).endswith("/attribute.project_ref/${var.circleci_project_id}:refs/heads/main"), (
            name
        )


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
    logged = {"request_log_sampling_rate": 1.0}  # edge.yaml's monitoring defaults (tests/monitoring check them)
    assert values["models"] == {
        "fashion": {"endpoint": "fashion", "request_log_table": "fashion_requests", **logged},
        "digits": {"endpoint": 'digits "v2"', "request_log_table": "digits_requests", **logged},
    }
    assert values["tracker_zone"] == "europe-west4-a" and values["tracker_machine_type"] == "e2-medium"
    assert values["web_invokers"] == ["user:ana@example.com", "group:ml@example.com"]
    assert values["web_image"].endswith("fashion-web:1")
    assert values["name_prefix"] == "edge-sample" and values["circleci_context_id"].startswith("9a7f3c21")


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
    assert ws.backend == {"bucket": "edge-sample-bucket", "prefix": "infra/terraform"}
