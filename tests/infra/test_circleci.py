""".circleci/config.yml: valid against CircleCI's schema (check-jsonschema's bundled copy of SchemaStore's
circle-ci schema, offline), the jobs of issue 4, every invoke call names a task that exists, and Google
credentials only on main, from the V1 OIDC token, refreshed while a job runs (issue 13)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT

CONFIG = ROOT / ".circleci" / "config.yml"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
# Tasks the pipeline may call before they exist (none now: `invoke --list` vouches for every call).
UPCOMING_TASKS: set[str] = set()
CALL = re.compile(r"(?:^|[\s;&|(])(?:\./edge\.sh|invoke)\s+([a-z][\w.-]*)", re.M)


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


@pytest.fixture(scope="module")
def known_tasks() -> set[str]:
    """Task names (and aliases) that `invoke --list` prints."""
    invoke = Path(sys.executable).with_name("invoke")
    out = subprocess.run(
        [str(invoke), "--list", "--list-format=json"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    def names(collection, prefix=""):
        for task in collection["tasks"]:
            yield prefix + task["name"]
            yield from (prefix + alias for alias in task["aliases"])
        if collection.get("default"):
            yield prefix.rstrip(".")
        for sub in collection["collections"]:
            yield from names(sub, f"{prefix}{sub['name']}.")

    return set(names(json.loads(out)))


def run_commands(config: dict):
    """(where, command) of every `run` step in jobs and reusable commands."""
    for section in ("jobs", "commands"):
        for name, body in config.get(section, {}).items():
            for step in body.get("steps", []):
                if isinstance(step, dict) and "run" in step:
                    run = step["run"]
                    yield f"{section}.{name}", run if isinstance(run, str) else run["command"]


def test_the_config_has_the_jobs_of_issue_4(config):
    assert config["version"] == 2.1
    assert {"test", "infra-check", "plan", "apply", "train", "deploy", "web-deploy"} <= set(config["jobs"])


def test_every_invoke_call_names_an_existing_or_upcoming_task(config, known_tasks):
    calls = [(where, task) for where, command in run_commands(config) for task in CALL.findall(command)]
    assert {task for _, task in calls} >= {"test", "infra.plan", "infra.apply", "train", "deploy", "web.deploy"}
    unknown = [(where, task) for where, task in calls if task not in known_tasks | UPCOMING_TASKS]
    assert not unknown, f"calls to tasks that `invoke --list` does not know: {unknown}"


def test_jobs_reference_only_defined_commands_and_executors(config):
    builtin = {
        "checkout",
        "run",
        "restore_cache",
        "save_cache",
        "store_artifacts",
        "persist_to_workspace",
        "attach_workspace",
        "setup_remote_docker",
        "store_test_results",
    }
    for name, job in config["jobs"].items():
        assert job["executor"] in config["executors"], name
        for step in job["steps"]:
            step_name = step if isinstance(step, str) else next(iter(step))
            assert step_name in builtin | set(config["commands"]), f"{name}: unknown step {step_name}"


def workflow_jobs(config: dict, workflow: str = "edge") -> dict[str, dict]:
    """A workflow's entries by name: {"job": the job it runs, **its settings}."""
    jobs = {}
    for entry in config["workflows"][workflow]["jobs"]:
        name, spec = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        jobs[spec.get("name", name)] = {"job": name, **spec}
    return jobs


def uses_google_credentials(config: dict, job: str) -> bool:
    return any(isinstance(step, dict) and "google-credentials" in step for step in config["jobs"][job]["steps"])


def validate_against_circleci_schema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.circle-ci", "--verbose", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_config_is_valid_against_the_circleci_schema():
    """check-jsonschema with its bundled copy of the schema: no network (the schema ships in the package)."""
    result = validate_against_circleci_schema(CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def misspell_a_step_key(config: dict) -> None:
    config["commands"]["google-credentials"]["steps"][1]["run"]["backgroud"] = True


def give_a_number_as_resource_class(config: dict) -> None:
    config["jobs"]["train"]["resource_class"] = 4


def misspell_a_filter(config: dict) -> None:
    plan = next(e["plan"] for e in config["workflows"]["edge"]["jobs"] if isinstance(e, dict) and "plan" in e)
    plan["filters"]["branch"] = plan["filters"].pop("branches")


@pytest.mark.parametrize("mistake", [misspell_a_step_key, give_a_number_as_resource_class, misspell_a_filter])
def test_the_schema_check_catches_a_broken_config(config, mistake, tmp_path):
    """The same check on a copy of the config with one mistake: it fails (the check is not vacuous)."""
    broken = json.loads(json.dumps(config))
    mistake(broken)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(broken))
    assert validate_against_circleci_schema(path).returncode == 1


def test_apply_waits_for_an_approval_on_main_and_deploys_follow_it(config):
    jobs = workflow_jobs(config)
    assert jobs["approve-apply"]["type"] == "approval"
    assert jobs["approve-apply"]["requires"] == ["plan", "test"]
    assert jobs["apply"]["requires"] == ["approve-apply"]
    assert jobs["train"]["requires"] == ["apply"] and jobs["deploy"]["requires"] == ["train"]
    for name in ("plan", "approve-apply", "apply", "train", "deploy", "web-deploy"):
        assert jobs[name]["filters"]["branches"]["only"] == "main", name


def test_only_jobs_on_main_in_the_restricted_context_get_google_credentials(config):
    """Google's side (ci.tf) accepts tokens of main and of the edge-gcp context only: the config asks for
    credentials nowhere else (in any workflow), so no branch job fails at the token exchange."""
    entries = {f"{w}.{n}": e for w in config["workflows"] for n, e in workflow_jobs(config, w).items()}
    for name, entry in entries.items():
        if entry["job"] in config["jobs"] and uses_google_credentials(config, entry["job"]):
            assert entry.get("context") == ["edge-gcp"], name
            assert entry["filters"]["branches"] == {"only": "main"}, name


def test_google_credentials_come_from_the_v1_oidc_token_not_key_files():
    """CIRCLE_OIDC_TOKEN's sub fits in Google's 127-byte google.subject; the V2 token's does not."""
    text = CONFIG.read_text()
    assert '"$CIRCLE_OIDC_TOKEN"' in text and '"type": "external_account"' in text
    assert "CIRCLE_OIDC_TOKEN_V2" not in text
    assert not re.search(r"private_key|service_account_key|GCLOUD_SERVICE_KEY|base64 -d", text)


def test_the_oidc_token_file_is_refreshed_in_the_background(config):
    """A token expires an hour after issue; train and deploy may run longer. A background step replaces the
    file the credential reads with a new token (`circleci run oidc get`) well within the hour."""
    steps = config["commands"]["google-credentials"]["steps"]
    refreshers = [s["run"] for s in steps if isinstance(s, dict) and s.get("run", {}).get("background") is True]
    assert len(refreshers) == 1
    command = refreshers[0]["command"]
    assert "circleci run oidc get" in command and "/tmp/circleci-oidc-token" in command
    period = int(re.search(r"sleep (\d+)", command).group(1))
    assert period <= 1800, "refresh well within the token's hour"


def test_the_image_build_honours_the_dockerfiles_ignore_file(config):
    """Dockerfile.dockerignore is read by BuildKit only: the job makes it the context's .dockerignore."""
    command = next(
        s["run"]["command"]
        for s in config["jobs"]["web-deploy"]["steps"]
        if isinstance(s, dict) and "docker build" in str(s.get("run", ""))
    )
    assert command.index("cp services/fashion-web/Dockerfile.dockerignore .dockerignore") < command.index(
        "docker build"
    )
