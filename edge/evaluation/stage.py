"""The evaluate stage of a model's DVC pipeline: `python -m edge.evaluation.stage --model NAME`.

DVC runs it in the model's folder after `train`: it evaluates the version that `train` registered
(outputs/model.json) on the held-out test split, imports the evaluation onto that version in the registry, and
writes what DVC tracks under models/<name>/outputs/: evaluation.json (`dvc metrics show`), confusion.csv and
classes.json (`dvc plots show`: the confusion matrix, per-class bars). A version that fails its behavioural tests
is still recorded (the deploy gate refuses it); the stage fails only when the version cannot be evaluated.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from edge.config import ModelConfig
from edge.evaluation import EvaluationError
from edge.evaluation.evaluate import Evaluation
from edge.project import Project, find_root, open_project
from edge.stages import stage_main, watched

OUTPUTS = "outputs"
log = logging.getLogger("edge.evaluation.stage")  # not __name__: it is "__main__" under `python -m`


def dvc_files(evaluation: Evaluation) -> dict[str, object]:
    """The stage's outputs by file name: metrics (flat where DVC shows them best), and the plots' rows."""
    metrics = evaluation.metrics
    behaviour = {test["name"]: test["value"] for test in evaluation.behaviour["tests"] if test["kind"] == "invariance"}
    labels = metrics["labels"]
    return {
        "evaluation.json": {
            "version": evaluation.version,
            **metrics["summary"],
            "behaviour_passed": evaluation.behaviour["passed"],
            "behaviour": behaviour,
            "classes": {row["class"]: {k: row[k] for k in ("precision", "recall", "f1")} for row in metrics["classes"]},
        },
        # DVC's `confusion` template counts rows: one (actual, predicted) row per held-out instance
        "confusion.csv": [("actual", "predicted")]
        + [
            (labels[actual], labels[predicted])
            for actual, row in enumerate(metrics["confusion"])
            for predicted, count in enumerate(row)
            for _ in range(count)
        ],
        "classes.json": [{k: row[k] for k in ("class", "precision", "recall", "f1")} for row in metrics["classes"]],
    }


def write_outputs(project: Project, model: ModelConfig, evaluation: Evaluation) -> None:
    import csv

    out = project.root / model.path / OUTPUTS
    out.mkdir(exist_ok=True)
    for name, content in dvc_files(evaluation).items():
        if name.endswith(".csv"):
            with (out / name).open("w", newline="") as f:
                csv.writer(f, lineterminator="\n").writerows(content)
        else:
            (out / name).write_text(json.dumps(content, indent=1) + "\n")


def evaluate_stage(model_name: str) -> tuple[Evaluation, str]:
    """Evaluates the version the train stage registered and imports the evaluation; returns it and its name."""
    from edge.evaluation.evaluate import evaluate_version
    from edge.evaluation.registry import import_with_reference

    project = open_project(find_root(Path.cwd()), os.environ.get("EDGE_TARGET"))
    model = project.config.model(model_name)
    produced = project.root / model.path / OUTPUTS / "model.json"
    try:
        trained = json.loads(produced.read_text())
    except (OSError, ValueError):
        raise EvaluationError(
            f"{produced.relative_to(project.root)} is missing or not JSON: run `invoke train`"
        ) from None
    lineage = {k: v for k, v in trained.items() if k not in ("model", "version")}
    with watched(project):
        evaluation = evaluate_version(project, model, str(trained["version"]), lineage=lineage)
        name = import_with_reference(project, model, evaluation)  # with the version's monitoring reference
    write_outputs(project, model, evaluation)
    return evaluation, name


def main(argv: list[str] | None = None) -> None:
    stage_main("edge.evaluation.stage", __doc__, log, _evaluated_line, argv)


def _evaluated_line(model_name: str) -> str:
    from edge.evaluation.show import summary_line

    evaluation, name = evaluate_stage(model_name)
    return f"{summary_line(evaluation.model, evaluation.version, evaluation.metadata())} (imported as {name})"


if __name__ == "__main__":
    main()
