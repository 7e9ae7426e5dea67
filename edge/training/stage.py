"""The train stage of a model's DVC pipeline: `python -m edge.training.stage --model NAME`.

DVC runs it in the model's folder (models/<name>/dvc.yaml); the target comes from EDGE_TARGET, which
`invoke train` sets in DVC's environment (default: edge.yaml's). It writes what DVC tracks under
models/<name>/outputs/: metrics.json (dvc metrics), history.json (dvc plots), confusion_matrix.json, model.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from edge.config import ModelConfig
from edge.errors import EdgeError
from edge.project import Project, find_root, open_project

OUTPUTS = "outputs"
log = logging.getLogger(__name__)


def write_outputs(project: Project, model: ModelConfig, result: dict) -> None:
    """The stage's outputs, for `dvc metrics show` and `dvc plots show`."""
    out = project.root / model.path / OUTPUTS
    out.mkdir(exist_ok=True)
    metrics = result["metrics"]
    files = {
        "metrics.json": {"accuracy": metrics["accuracy"], "loss": metrics["loss"]},
        "history.json": metrics["epochs"],
        "confusion_matrix.json": metrics["confusion_matrix"],
        "model.json": {
            "model": result["model"]["name"],
            "version": result["model"]["version"],
            "job": result["job"],
            "run": result["run"],
            **result["lineage"],
        },
    }
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=1) + "\n")


def train_stage(model_name: str) -> dict:
    """Opens the project above the working directory and runs one training of `model_name`."""
    from edge.training.run import run_training

    project = open_project(find_root(Path.cwd()), os.environ.get("EDGE_TARGET"))
    model = project.config.model(model_name)
    with project.target.watch():
        try:
            result = run_training(project, model)
        except KeyboardInterrupt:
            lost = project.target.lost()
            if lost:
                raise EdgeError(f"{lost}: start it again with `invoke twin.up`, then run the command again") from None
            raise
    write_outputs(project, model, result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edge.training.stage", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name in edge.yaml")
    args = parser.parse_args(argv)
    from edge.ui import setup_logging

    setup_logging()
    try:
        result = train_stage(args.model)
    except EdgeError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:
        from google.api_core.exceptions import GoogleAPICallError

        if not isinstance(exc, GoogleAPICallError):
            raise
        print(f"edge: Google Cloud API error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info(
        "registered %s@%s (test accuracy %.4f, run %s)",
        result["model"]["name"],
        result["model"]["version"],
        result["accuracy"],
        result["run"],
    )


if __name__ == "__main__":
    main()
