"""A twin killed in the middle of `invoke train`: the command says so in one line within seconds, the job's
process does not run on, and after a restart the lock is reported, the job FAILED and nothing registered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from edge.project import open_project
from tests.support import FAST_TRAIN, commit, copy_project, invoke, set_train_params

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def seeded_repo(tmp_path_factory):
    """A user repository, initialised and seeded, with a training long enough to be killed in the middle."""
    repo = copy_project(tmp_path_factory.mktemp("dead-twin"))
    set_train_params(repo, **{**FAST_TRAIN, "epochs": 40})
    commit(repo, "a long training")
    for step in ("init", "data.seed"):
        result = invoke(repo, step)
        assert result.returncode == 0, result.stderr
    yield repo
    invoke(repo, "twin.down")


def trainer_processes(repo) -> list[psutil.Process]:
    """The job processes the twin of `repo` started (they run from its job folders)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if "fashion_trainer.task" in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return [p for p in found if str(repo) in (p.info["cwd"] or "")]


def test_a_twin_killed_during_train_is_one_line_within_ten_seconds(seeded_repo):
    twin_pid = json.loads((seeded_repo / ".edge/twin/twin.json").read_text())["pid"]
    train = subprocess.Popen(
        [sys.executable, "-m", "invoke", "train"],
        cwd=seeded_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EDGE_HOME": str(seeded_repo / ".edge")},
    )
    deadline = time.monotonic() + 300
    while not trainer_processes(seeded_repo):
        assert train.poll() is None, train.communicate()
        assert time.monotonic() < deadline, "the training job never started"
        time.sleep(0.5)
    time.sleep(2)
    os.kill(twin_pid, signal.SIGKILL)
    killed = time.monotonic()
    out, err = train.communicate(timeout=120)
    took = time.monotonic() - killed
    assert train.returncode == 1, (out, err)
    assert took < 10, f"noticed after {took:.1f} s"
    assert "Traceback" not in out + err, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("edge: the twin (pid ") and "invoke twin.up" in lines[-1], err
    assert "invoke force-unlock" in lines[-1], "the lock held by train could not be released: say so"
    assert len(lines) == 1, err
    deadline = time.monotonic() + 15
    while trainer_processes(seeded_repo):
        assert time.monotonic() < deadline, "the job's process ran on after its twin died"
        time.sleep(0.5)


def test_after_a_restart_the_job_failed_nothing_is_registered_and_the_lock_is_shown(seeded_repo):
    assert invoke(seeded_repo, "twin.up").returncode == 0
    project = open_project(seeded_repo)
    jobs = project.vertex().CustomJob.list()
    assert [j.state.name for j in jobs] == ["JOB_STATE_FAILED"]
    assert "The twin stopped" in jobs[0].error.message
    assert project.state.read().model("fashion").registry is None
    status = invoke(seeded_repo, "status").stdout
    assert "(train fashion)" in status
    assert invoke(seeded_repo, "force-unlock", "--yes").returncode == 0
    assert project.state.current_lock() is None
