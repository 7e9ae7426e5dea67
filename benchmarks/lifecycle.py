"""Wall time of each lifecycle step on the twin, the train stage's overhead, and a no-op train.

    .venv/bin/python benchmarks/lifecycle.py [--fast]

Copies this project into a temp folder (a fresh user repository), then times `invoke init`,
`data.seed`, `train`, `deploy`, `predict` and a second, no-op `train`; then runs the trainer module
directly on the same prepared arrays and params, and prints the train stage's overhead over it.
--fast trains 1 epoch on 5000 rows (the tests' params) instead of the defaults.
Figures only: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import (  # noqa: E402  (a fresh user repository)
    FAST_EVALUATE,
    FAST_GATE,
    commit,
    copy_project,
    set_evaluate_params,
    set_gate,
    set_train_params,
)

FAST = {"epochs": 1, "train_limit": 5000, "filters": [16, 32], "dense": 64}


def run(repo: Path, *args: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        args, cwd=repo, capture_output=True, text=True, env={**os.environ, "EDGE_HOME": str(repo / ".edge")}
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="train 1 epoch on 5000 rows")
    args = parser.parse_args()
    invoke = [sys.executable, "-m", "invoke"]
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_project(Path(tmp))
        if args.fast:  # with the behavioural thresholds and the deploy gate such a model passes
            set_train_params(repo, **FAST)
            set_evaluate_params(repo, **FAST_EVALUATE)
            set_gate(repo, **FAST_GATE)
            commit(repo, "fast params")
        params = yaml.safe_load((repo / "models/fashion/params.yaml").read_text())

        times = {}
        try:
            for step in ("init", "data.seed", "train", "deploy", "predict"):
                times[step] = run(repo, *invoke, step)
            times["train (no-op)"] = run(repo, *invoke, "train")
            prepared = repo / "data/prepared/fashion"
            trainer = repo / "models/fashion/trainer"
            env = {**os.environ, "PYTHONPATH": str(trainer)}
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "fashion_trainer.task",
                    *[f"--{s}={prepared / (s + '.npz')}" for s in ("train", "validation", "test")],
                    f"--params-json={json.dumps(params['train'])}",
                    f"--metrics-uri={repo / 'm.json'}",
                    f"--model-dir={repo / 'direct-model'}",
                ],
                cwd=repo,
                env=env,
                check=True,
                capture_output=True,
            )
            direct = time.perf_counter() - start
        finally:
            subprocess.run(
                [*invoke, "twin.down"],
                cwd=repo,
                capture_output=True,
                env={**os.environ, "EDGE_HOME": str(repo / ".edge")},
            )

    print(f"lifecycle on the twin ({'fast' if args.fast else 'default'} params, {os.cpu_count()} cores)")
    for step, seconds in times.items():
        print(f"  invoke {step:16} {seconds:7.1f} s")
    print(f"  trainer run directly   {direct:7.1f} s")
    print(f"  train stage overhead   {times['train'] - direct:7.1f} s ({times['train'] / direct:.2f}x the direct run)")


if __name__ == "__main__":
    main()
