"""The parent side: start a model server process, wait until it serves, stop it."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.twin import logs
from edge.twin.vertex.serving.server import SERVER_OPTIONS

if TYPE_CHECKING:
    from edge.twin.lifeline import Lifeline

PROJECT_ROOT = Path(__file__).resolve().parents[4]


def _failed(model_dir: Path, problem: str, log_path: Path) -> RuntimeError:
    tail = logs.tail(log_path, 40) or "(the log is empty)"
    return RuntimeError(f"model server for {model_dir} {problem}; log {log_path}:\n{tail}")


def _health_ok(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _command(
    model_dir: Path, port: int, port_file: Path, lifeline: Lifeline | None, framework: str | None, opts: dict
) -> list[str]:
    command = [sys.executable, "-m", "edge.twin.vertex.serving", "--model-dir", str(model_dir), "--port", str(port)]
    command += ["--port-file", str(port_file)]
    if framework:
        command += ["--framework", framework]
    if lifeline is not None:
        command += ["--lifeline", str(lifeline.fd)]
    for name, value in opts.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def start_model_server(
    model_dir: Path,
    log_path: Path,
    port: int = 0,
    *,
    ready_timeout: float = 120.0,
    lifeline: Lifeline | None = None,
    framework: str | None = None,
    **opts: Any,
) -> tuple[subprocess.Popen, int]:
    """Start a model server process for `model_dir`; return it and its port once ready.

    `framework` (tensorflow, sklearn or xgboost) says how to load the artifact; default: what its files suggest.

    `opts` are the CLI options by Python name: max_instances, max_batch, batch_timeout_ms. The process gets
    its own session (so stop_model_server can signal its group), the `lifeline` if given
    (it stops when the lifeline's twin dies) and writes stdout and stderr to `log_path`.
    Raises RuntimeError with the log's tail if it exits or is not ready within
    `ready_timeout` seconds.
    """
    unknown = set(opts) - set(SERVER_OPTIONS)
    if unknown:
        raise TypeError(
            f"unknown model server option(s): {', '.join(sorted(unknown))}; known: {', '.join(SERVER_OPTIONS)}"
        )
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="edge-model-server-") as scratch:
        port_file = Path(scratch) / "port"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                _command(model_dir, port, port_file, lifeline, framework, opts),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                **(lifeline.popen_args() if lifeline is not None else {}),
            )
        deadline = time.monotonic() + ready_timeout
        while not port_file.exists():
            if proc.poll() is not None:
                raise _failed(model_dir, f"exited with status {proc.returncode} before it was ready", log_path)
            if time.monotonic() > deadline:
                stop_model_server(proc)
                raise _failed(model_dir, f"was not ready after {ready_timeout:g} s", log_path)
            time.sleep(0.05)
        bound_port = int(port_file.read_text())
    if not _health_ok(bound_port):
        stop_model_server(proc)
        raise _failed(model_dir, f"announced port {bound_port} but GET /health failed", log_path)
    return proc, bound_port


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


def stop_model_server(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """Stop a server from start_model_server: SIGTERM its group, then SIGKILL; its status."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    return proc.returncode
