""".circleci/config.yml parses, has the jobs of issue 4, and every job calls invoke tasks that exist."""

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


def test_apply_waits_for_an_approval_on_main_and_deploys_follow_it(config):
    jobs = {}
    for entry in config["workflows"]["edge"]["jobs"]:
        name, spec = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        jobs[spec.get("name", name)] = {"job": name, **spec}
    assert jobs["approve-apply"]["type"] == "approval"
    assert jobs["apply"]["requires"] == ["approve-apply"]
    assert jobs["train"]["requires"] == ["apply"] and jobs["deploy"]["requires"] == ["train"]
    for name in ("approve-apply", "apply", "train", "deploy", "web-deploy", "plan-main"):
        assert jobs[name]["filters"]["branches"]["only"] == "main", name
    assert jobs["plan-branch"]["filters"]["branches"]["ignore"] == "main"


def test_google_credentials_come_from_oidc_not_key_files():
    text = CONFIG.read_text()
    assert "CIRCLE_OIDC_TOKEN_V2" in text and '"type": "external_account"' in text
    assert not re.search(r"private_key|service_account_key|GCLOUD_SERVICE_KEY|base64 -d", text)
