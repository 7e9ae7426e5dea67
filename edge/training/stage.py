"""The train stage of a model's DVC pipeline: `python -m edge.training.stage --model NAME`.

DVC runs it in the model's folder (models/<name>/dvc.yaml); the target comes from EDGE_TARGET, which
`invoke train` sets in DVC's environment (default: edge.yaml's). It writes what DVC tracks under
models/<name>/outputs/: model.json (the version and its lineage), metrics.json (`dvc metrics show`: the trainer's
final metrics), and, when the trainer reports them, history.json (its `epochs` rows, for `dvc plots show`) and
confusion_matrix.json.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from edge.config import MAX_REPLICAS, ModelConfig
from edge.errors import EdgeError
from edge.project import Project, find_root, open_project
from edge.stages import stage_main, watched

OUTPUTS = "outputs"
REPLICAS_VARIABLE = "EDGE_TRAIN_REPLICAS"  # `invoke train --replicas N` sets it in DVC's environment, for this stage
log = logging.getLogger("edge.training.stage")  # not __name__: under `python -m` that is __main__


def write_outputs(project: Project, model: ModelConfig, result: dict) -> None:
    """The stage's outputs, for `dvc metrics show` and `dvc plots show`."""
    from edge.training.run import final_metrics

    out = project.root / model.path / OUTPUTS
    out.mkdir(exist_ok=True)
    metrics = result["metrics"]
    optional = {"history.json": metrics.get("epochs"), "confusion_matrix.json": metrics.get("confusion_matrix")}
    files = {
        "metrics.json": final_metrics(metrics),
        **{name: content for name, content in optional.items() if content is not None},
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
    with watched(project):
        result = run_training(project, model, replicas(model))
    write_outputs(project, model, result)
    return result


def replicas(model: ModelConfig) -> int:
    """How many machines train: `invoke train --replicas` (through REPLICAS_VARIABLE), else edge.yaml's."""
    given = os.environ.get(REPLICAS_VARIABLE)
    if not given:
        return model.training.replicas
    if not given.isdecimal() or not 1 <= int(given) <= MAX_REPLICAS:
        raise EdgeError(f"--replicas must be a whole number from 1 to {MAX_REPLICAS}, got {given!r}")
    return int(given)


def main(argv: list[str] | None = None) -> None:
    stage_main("edge.training.stage", __doc__, log, _trained_line, argv)


def _trained_line(model_name: str) -> str:
    from edge.training.run import final_metrics

    result = train_stage(model_name)
    shown = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in final_metrics(result["metrics"]).items()
    )
    return f"registered {result['model']['name']}@{result['model']['version']} ({shown}; run {result['run']})"


if __name__ == "__main__":
    main()
