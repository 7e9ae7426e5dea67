"""Development tasks: the demo and the test suite."""

from __future__ import annotations

import os
import subprocess
import sys

from invoke import Exit, task

from edge.tasks.twin import twin_home
from edge.twin import process


@task(help={"k": "only tests matching this pytest -k expression", "path": "test path (default: tests)",
            "exitfirst": "stop at the first failure"})
def test(c, k=None, path="tests", exitfirst=False):
    """Run the test suite (the tests start their own twins on free ports)."""
    command = [sys.executable, "-m", "pytest", path] + (["-k", k] if k else []) + (["-x"] if exitfirst else [])
    code = subprocess.call(command)
    if code:
        raise Exit(code=code)


@task
def demo(c):
    """Start the twin and run examples/twin_quickstart.py on it: train, register, deploy, predict."""
    try:
        info, _ = process.up(twin_home())
    except process.TwinProcessError as exc:
        raise Exit(str(exc), code=1)
    print(f"twin: storage {info.storage_url}, vertex {info.vertex_url}")
    code = subprocess.call([sys.executable, "examples/twin_quickstart.py"], env={**os.environ, **info.env})
    if code:
        raise Exit("demo failed; see the output above and `invoke twin.status`", code=code)
