"""The background twin process: invoke twin.up/status/env/down, restarts, and a twin killed mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.api_core import exceptions

from edge.target import twin_target
from edge.twin import process
from tests.support import ROOT, TRAIN_LINE, TRAINING_IMAGE, upload_line_model

pytestmark = pytest.mark.timeout(400)


def invoke(edge_home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "EDGE_HOME": str(edge_home)},
        timeout=120,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def recorded_pids(root: Path, name: str) -> list[int]:
    return [int(p.read_text().split()[0]) for p in root.rglob(name)]


@pytest.fixture(scope="module")
def edge_home(tmp_path_factory):
    """An EDGE_HOME whose twin runs as a background process; stopped at the end."""
    home = tmp_path_factory.mktemp("edge-home")
    yield home
    process.down(home / "twin")


@pytest.fixture
def own_vertex(edge_home, target, bucket):
    """The SDK pointed at the background twin for one test, then back at the session's twin."""
    info = process.running(edge_home / "twin")
    assert info is not None, "the background twin should be running"
    own = twin_target(info.env)
    client = own.storage_client()
    own_bucket = client.lookup_bucket("edge-proc") or client.create_bucket("edge-proc")
    own.init_vertex(staging_bucket=f"gs://{own_bucket.name}/staging")
    from google.cloud import aiplatform

    yield aiplatform, own_bucket
    target.apply_env()
    target.init_vertex(staging_bucket=f"gs://{bucket.name}/staging")


def copy_tree(source_bucket, prefix: str, destination_bucket) -> None:
    for blob in source_bucket.list_blobs(prefix=prefix):
        destination_bucket.blob(blob.name).upload_from_string(blob.download_as_bytes())


def test_up_starts_a_background_twin_and_a_second_up_reuses_it(edge_home):
    first = invoke(edge_home, "twin.up")
    assert first.returncode == 0, first.stderr
    assert "twin started" in first.stdout
    second = invoke(edge_home, "twin.up")
    assert "already running" in second.stdout
    info = process.running(edge_home / "twin")
    assert f"pid {info.pid}" in second.stdout


def test_status_shows_ports_and_env_prints_exports(edge_home):
    info = process.running(edge_home / "twin")
    status = invoke(edge_home, "twin.status")
    assert status.returncode == 0, status.stderr
    assert "twin: running" in status.stdout
    assert f"http://127.0.0.1:{info.ports['vertex']}" in status.stdout
    exports = invoke(edge_home, "twin.env").stdout.splitlines()
    assert f"export STORAGE_EMULATOR_HOST=http://127.0.0.1:{info.ports['storage']}" in exports
    assert f"export EDGE_VERTEX_API_ENDPOINT=http://127.0.0.1:{info.ports['vertex']}" in exports
    assert "export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false" in exports


def test_a_twin_killed_during_a_job_fails_the_job_and_keeps_everything_else(
    edge_home, own_vertex, bucket, line_model_uri
):
    aiplatform, own_bucket = own_vertex
    prefix = line_model_uri.removeprefix(f"gs://{bucket.name}/")
    copy_tree(bucket, prefix, own_bucket)
    model = upload_line_model(aiplatform, f"gs://{own_bucket.name}/{prefix}")
    endpoint = aiplatform.Endpoint.create(display_name="survivor")
    endpoint.deploy(model, machine_type="n1-standard-2")
    assert endpoint.predict(instances=[[1.0]]).predictions
    job = aiplatform.CustomJob.from_local_script(
        display_name="interrupted", script_path=str(TRAIN_LINE), container_uri=TRAINING_IMAGE, args=["--sleep", "300"]
    )
    job.submit()
    while job.state.name != "JOB_STATE_RUNNING":
        time.sleep(0.2)
    twin_home = edge_home / "twin"
    children = recorded_pids(twin_home, "job.pid") + recorded_pids(twin_home, "server.pid")
    os.kill(process.running(twin_home).pid, signal.SIGKILL)

    info, started = process.up(twin_home)
    assert started
    job = aiplatform.CustomJob.get(job.resource_name)
    assert job.state.name == "JOB_STATE_FAILED"
    assert "twin stopped" in job.error.message
    assert not any(pid_alive(pid) for pid in children), "the dead twin's job and model server must be ended"
    assert aiplatform.Model(model.resource_name).version_id == "1"
    assert own_bucket.blob(f"{prefix}/saved_model.pb").exists()
    deadline = time.monotonic() + 120
    while True:  # the deployed model is served again once its server has loaded it
        try:
            assert abs(endpoint.predict(instances=[[1.0]]).predictions[0][0] - 3.0) < 0.1
            break
        except exceptions.ServiceUnavailable:
            assert time.monotonic() < deadline, "the deployed model was not served again after the restart"
            time.sleep(0.5)


def test_down_stops_the_twin_and_its_model_servers(edge_home):
    twin_home = edge_home / "twin"
    pid = process.running(twin_home).pid
    servers = recorded_pids(twin_home, "server.pid")
    assert servers, "a model is deployed, so a model server runs"
    result = invoke(edge_home, "twin.down")
    assert "twin stopped" in result.stdout
    assert not pid_alive(pid)
    assert not any(pid_alive(p) for p in servers)
    status = invoke(edge_home, "twin.status")
    assert status.returncode == 1
    assert "not running" in status.stderr
    assert json.loads((twin_home / "twin.json").read_text())["pid"] == pid
