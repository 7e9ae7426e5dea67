"""Control of the one background twin process: up, down, status, env."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.twin import logs, orphans

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


class TwinProcessError(EdgeError):
    """The twin could not be started, reached or stopped; the message says what to do."""


@dataclass
class TwinInfo:
    pid: int
    started_at: float
    ports: dict[str, int]
    env: dict[str, str]
    project: str
    location: str

    @property
    def vertex_url(self) -> str:
        return self.env["EDGE_VERTEX_API_ENDPOINT"]

    @property
    def storage_url(self) -> str:
        return self.env["STORAGE_EMULATOR_HOST"]


def _get_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _healthy(info: TwinInfo) -> bool:
    try:
        _get_json(info.vertex_url + "/_twin/health")
        _get_json(info.storage_url + "/_twin/health")
        return True
    except OSError:
        return False


def running(home: Path) -> TwinInfo | None:
    """The running twin of `home`, or None."""
    path = home / "twin.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    info = TwinInfo(raw["pid"], raw["startedAt"], raw["ports"], raw["env"], raw["project"], raw["location"])
    return info if orphans.alive(info.pid) and _healthy(info) else None


def up(home: Path) -> tuple[TwinInfo, bool]:
    """Starts the twin unless it runs already; returns it and whether it was started now."""
    home = home.resolve()
    info = running(home)
    if info is not None:
        return info, False
    home.mkdir(parents=True, exist_ok=True)
    previous = home / "twin.json"
    old_pid = json.loads(previous.read_text()).get("pid") if previous.exists() else None
    log = (home / "twin.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.twin", "--home", str(home)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TwinProcessError(
                f"The twin exited at start (code {process.returncode}); see {home / 'twin.log'}:\n"
                f"{logs.tail(home / 'twin.log', 15)}"
            )
        info = running(home)
        if info is not None and info.pid == process.pid and info.pid != old_pid:
            return info, True
        time.sleep(0.1)
    process.kill()
    raise TwinProcessError(f"The twin did not answer within {START_TIMEOUT_SECONDS} s; see {home / 'twin.log'}.")


def down(home: Path) -> bool:
    """Stops the twin and every process it started; False if none was running."""
    path = home / "twin.json"
    try:
        pid = json.loads(path.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return False
    was_running = orphans.alive(pid)
    if was_running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while orphans.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if orphans.alive(pid):
            os.killpg(pid, signal.SIGKILL)
    # jobs and model servers run in sessions of their own: end any that a dead twin left behind
    for pattern in ("vertex/jobs/*/*.pid", "vertex/deployments/*/server.pid"):  # jobs: one per replica
        for pid_file in home.glob(pattern):
            orphans.end_recorded(pid_file)
    return was_running


def status(home: Path) -> dict | None:
    """Ports, uptime and what the twin holds, or None when it is not running."""
    info = running(home)
    if info is None:
        return None
    state = _get_json(info.vertex_url + "/_twin/status")
    return {
        "pid": info.pid,
        "uptimeSeconds": round(time.time() - info.started_at, 1),
        "ports": info.ports,
        "project": info.project,
        "location": info.location,
        **state,
    }


def reset(home: Path) -> None:
    """Empties the running twin: buckets, registry, endpoints, jobs."""
    info = running(home)
    if info is None:
        raise TwinProcessError("The twin is not running; start it with `invoke twin.up`.")
    request = urllib.request.Request(info.vertex_url + "/_twin/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=120).read()


def export_lines(info: TwinInfo) -> str:
    return "\n".join(f"export {k}={v}" for k, v in info.env.items())
