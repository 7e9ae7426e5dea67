"""The infra tasks through `invoke` in a subprocess, as a user runs them, where no Google credentials
exist: no GOOGLE_APPLICATION_CREDENTIALS, HOME and CLOUDSDK_CONFIG in empty directories (no ADC
file), NO_GCE_CHECK so google-auth does not probe a metadata server. No terraform runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

INVOKE = Path(sys.executable).with_name("invoke")


@pytest.fixture
def user_dir(project_root, clean_env, tmp_path):
    """A project directory (sample edge.yaml, links to tasks.py, edge/ and infra/) and a credential-less env."""
    for name in ("tasks.py", "edge"):
        (project_root / name).symlink_to(ROOT / name)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **clean_env,
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / "gcloud"),
        "NO_GCE_CHECK": "true",
        "PATH": f"{INVOKE.parent}:/usr/bin:/bin",
    }
    return project_root, env


def run(user_dir, *args):
    directory, env = user_dir
    return subprocess.run([str(INVOKE), *args], cwd=directory, env=env, capture_output=True, text=True, timeout=60)


def test_plan_without_credentials_fails_with_one_clear_line(user_dir):
    result = run(user_dir, "infra.plan", "--target", "gcp")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "no Google Cloud credentials: run `gcloud auth application-default login` "
        "(or set GOOGLE_APPLICATION_CREDENTIALS to a credential file)"
    )
    assert result.stdout == ""
    assert not (user_dir[0] / ".edge" / "infra").exists(), "nothing rendered, terraform never called"


def test_apply_without_credentials_fails_before_asking(user_dir):
    result = run(user_dir, "infra.apply", "--target", "gcp")
    assert result.returncode == 1
    assert "no Google Cloud credentials" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_infra_tasks_refuse_the_twin(user_dir):
    result = run(user_dir, "infra.plan", "--target", "twin")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "infra tasks manage Google Cloud and target is 'twin': pass --target gcp (the twin needs no Terraform)"
    )


def test_a_broken_edge_yaml_is_one_line_too(user_dir):
    (user_dir[0] / "edge.yaml").write_text("target: gcp\nproject: X\n")
    result = run(user_dir, "infra.plan")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "edge.yaml" in result.stderr
