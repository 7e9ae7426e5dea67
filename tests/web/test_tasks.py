"""`invoke web.deploy` refuses, in one line, what it cannot do here (Cloud Run itself is not reachable offline)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import ROOT


def invoke_here(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`invoke ARGS` in this checkout (web.deploy reads edge.yaml only; it changes nothing here)."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or dict(os.environ),
    )


def test_web_deploy_on_the_twin_points_to_web_serve():
    result = invoke_here("web.deploy", "--target", "twin", "--image", "us-docker.pkg.dev/p/edge/fashion-web:1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "edge: web.deploy rolls out to Cloud Run on the gcp target (this is twin): locally run `invoke web.serve`"
    ]


def test_web_deploy_without_credentials_fails_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    # no gcloud configuration, and no probe of the GCE metadata server: nothing leaves the machine
    env.update(CLOUDSDK_CONFIG=str(tmp_path), HOME=str(tmp_path), NO_GCE_CHECK="true")
    result = invoke_here(
        "web.deploy",
        "--target",
        "gcp",
        "--image",
        "us-central1-docker.pkg.dev/edge-test/edge/fashion-web:abc123",
        env=env,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Google Cloud credentials" in lines[0], result.stderr
