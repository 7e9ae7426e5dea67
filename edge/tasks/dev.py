"""Development tasks: the demo and the test suite."""

from __future__ import annotations

import subprocess
import sys

from invoke import Exit, task


@task(
    help={
        "k": "only tests matching this pytest -k expression",
        "path": "test path (default: tests)",
        "exitfirst": "stop at the first failure",
        "workers": "pytest processes (pytest-xdist, a test file each at a time); 1 runs in this process",
    }
)
def test(c, k=None, path="tests", exitfirst=False, workers=2):
    """Lint (ruff check, ruff format --check), then the test suite (the tests start their own twins on free ports).

    Two workers by default: most of a test's time is spent waiting on subprocesses (DVC, jobs, model servers), so
    two files at once use two cores where one leaves one idle."""
    ruff = [sys.executable, "-m", "ruff"]
    for check in (["check", "."], ["format", "--check", "."]):
        if subprocess.call(ruff + check) != 0:
            raise Exit(
                f"edge: `ruff {' '.join(check)}` found problems: run `ruff check --fix .` and `ruff format .`", code=1
            )
    if not str(workers).isdecimal() or int(workers) < 1:
        raise Exit(f"edge: --workers must be a whole number of at least 1, got {workers!r}", code=1)
    command = [sys.executable, "-m", "pytest", path] + (["-k", k] if k else []) + (["-x"] if exitfirst else [])
    if int(workers) > 1:
        command += ["-n", str(workers), "--dist", "loadfile"]
    code = subprocess.call(command)
    if code:
        raise Exit(code=code)


@task
def demo(c):
    """The whole lifecycle on the twin: init, data.seed, train, evaluate (the version deploy takes), deploy (through
    the gate), predict (the model's payload)."""
    from edge.tasks import data, evaluation, lifecycle

    steps = [
        ("init", lifecycle.init),
        ("data.seed", data.seed),
        ("train", lifecycle.train),
        ("evaluate", evaluation.evaluate),
        ("deploy", lifecycle.deploy),
        ("predict", lifecycle.predict),
    ]
    for name, step in steps:
        print(f"\n== invoke {name}", flush=True)
        step(c)
