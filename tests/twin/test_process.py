"""The background twin process: invoke twin.up/status/env/down, restarts, and a twin killed mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
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
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def process_trees(pids: list[int]) -> list[int]:
    """The processes and all their descendants."""
    found = []
    for pid in pids:
        parent = psutil.Process(pid)
        found += [pid, *(child.pid for child in parent.children(recursive=True))]
    return found


def copy_tree(source_bucket, prefix: str, destination_bucket) -> None:
    for blob in source_bucket.list_blobs(prefix=prefix):
        destination_bucket.blob(blob.name).upload_from_string(blob.download_as_bytes())


def recorded_pids(root: Path, name: str) -> list[int]:
    return [int(p.read_text().split()[0]) for p in root.rglob(name)]


@pytest.fixture(scope="module")
def edge_home(tmp_path_factory):
    """An EDGE_HOME whose twin runs as a background process; stopped at the end."""
    home = tmp_path_factory.mktemp("edge-home")
    yield home
    process.down(home / "twin")


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


@pytest.fixture(scope="module")
def interrupted(edge_home, target, bucket, line_model_uri):
    """The background twin killed with SIGKILL while a job runs and a model is deployed: what it left behind.

    The SDK points at the background twin until the module's tests end."""
    twin_home = edge_home / "twin"
    own = twin_target(process.running(twin_home).env)
    client = own.storage_client()
    own_bucket = client.lookup_bucket("edge-proc") or client.create_bucket("edge-proc")
    own.init_vertex(staging_bucket=f"gs://{own_bucket.name}/staging")
    from google.cloud import aiplatform

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
    (supervisor,) = recorded_pids(twin_home, "workerpool0-0.pid")
    while not psutil.Process(supervisor).children():  # the job's script starts under its supervisor
        time.sleep(0.05)
    children = process_trees([supervisor, *recorded_pids(twin_home, "server.pid")])
    os.kill(process.running(twin_home).pid, signal.SIGKILL)
    yield SimpleNamespace(
        aiplatform=aiplatform,
        job=job,
        model=model,
        endpoint=endpoint,
        children=children,
        prefix=prefix,
        bucket=own_bucket,
    )
    target.apply_env()
    target.init_vertex(staging_bucket=f"gs://{bucket.name}/staging")


def test_a_twin_killed_with_sigkill_leaves_no_job_or_model_server_running(interrupted):
    assert len(interrupted.children) >= 3, "a job (its supervisor and script) and a model server were running"
    deadline = time.monotonic() + 10
    while survivors := [pid for pid in interrupted.children if pid_alive(pid)]:
        assert time.monotonic() < deadline, f"the dead twin's job and model server must end by themselves: {survivors}"
        time.sleep(0.1)


def test_a_restarted_twin_fails_the_interrupted_job_and_serves_the_model_again(edge_home, interrupted):
    info, started = process.up(edge_home / "twin")
    assert started
    own = twin_target(info.env)
    own.apply_env()
    own.init_vertex(staging_bucket=f"gs://{interrupted.bucket.name}/staging")
    aiplatform = interrupted.aiplatform
    job = aiplatform.CustomJob.get(interrupted.job.resource_name)
    assert job.state.name == "JOB_STATE_FAILED"
    assert "twin stopped" in job.error.message
    assert aiplatform.Model(interrupted.model.resource_name).version_id == "1"
    assert own.storage_client().bucket(interrupted.bucket.name).blob(f"{interrupted.prefix}/saved_model.pb").exists()
    deadline = time.monotonic() + 120
    while True:  # the deployed model is served again once its server has loaded it
        try:
            assert abs(interrupted.endpoint.predict(instances=[[1.0]]).predictions[0][0] - 3.0) < 0.1
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
