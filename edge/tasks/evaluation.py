"""Testing the model: a version's evaluation read back from the registry (evaluated first when it has none), two
versions side by side, and the evaluation's HTML page."""

from __future__ import annotations

from invoke import Exit, task

from edge.tasks.common import JSON_HELP, MODEL_HELP, TARGET_HELP, session


def _pair(compare: str) -> tuple[str, str]:
    parts = [part.strip() for part in compare.split(",") if part.strip()]
    if len(parts) != 2:
        raise Exit("edge: --compare takes two versions separated by a comma, e.g. --compare 1,2", code=1)
    return parts[0], parts[1]


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "version": "registry version or alias (default: the default version)",
        "compare": "two versions separated by a comma (e.g. 1,2): side by side, differences marked",
        "json_": JSON_HELP,
        "report": "also write an HTML page (plots) under .edge/reports/evaluations/ and to the bucket",
    }
)
def evaluate(c, model=None, target=None, version=None, compare=None, json_=False, report=False):
    """Print a version's evaluation from the registry: summary, per class, confusion matrix, behavioural tests.
    A version without one (trained before evaluations, or uploaded by hand) is evaluated first and imported."""
    from edge import ui
    from edge.evaluation.registry import evaluation_for

    if compare and (version or report):
        raise Exit("edge: --compare takes the two versions itself (without --version or --report)", code=1)
    with session(target) as project:
        spec = project.config.model(model)
        if compare:
            shown = [evaluation_for(project, spec, v) for v in _pair(compare)]
        else:
            shown = [evaluation_for(project, spec, version)]
        if report:
            from edge.evaluation.report import write_report

            shown[0]["report"] = write_report(project, spec, shown[0])
    if compare:
        _show_comparison(spec.name, *shown, json_)
    elif json_:
        ui.show_json(shown[0])
    else:
        _show(spec.name, shown[0])


def _show(model: str, shown: dict) -> None:
    from edge import ui
    from edge.evaluation import show

    if shown["evaluated_now"]:
        ui.show(f"{model} version {shown['version']} had no evaluation: evaluated now and imported into the registry")
    ui.show(show.summary_line(model, shown["version"], shown))
    ui.show(
        f"evaluation {shown['evaluation']}\n  {shown['instances']} held-out {shown['split']} instances, "
        f"evaluated {shown['evaluated_at']} by {shown['evaluated_by']}\n"
    )
    ui.show_table(show.summary_rows(shown), ["metric", "value"])
    ui.show()
    ui.show_table(show.class_rows(shown), ["class", "precision", "recall", "F1", "instances"])
    ui.show("\nconfusion matrix (rows: actual class; columns: predicted class id)")
    rows, headers = show.confusion_grid(shown)
    ui.show_table(rows, headers, align=["left", *["right"] * (len(headers) - 1)])
    ui.show("\nbehavioural tests (thresholds: params.yaml evaluate)")
    ui.show_table(show.behaviour_rows(shown), ["test", "value", "minimum", "result"])
    if "report" in shown:
        ui.show(f"\nreport ({shown['report']['figures']} plots):\n  {shown['report']['local']}")
        ui.show(f"  {shown['report']['remote']}")


def _show_comparison(model: str, a: dict, b: dict, json_: bool) -> None:
    from edge import ui
    from edge.evaluation import show

    rows = show.compare_rows(a, b)
    if json_:
        differences = [dict(zip(("what", "a", "b", "difference", "b_is"), row, strict=True)) for row in rows]
        ui.show_json({"a": a, "b": b, "differences": differences})
        return
    for one in (a, b):
        ui.show(show.summary_line(model, one["version"], one))
    ui.show()
    ui.show_table(rows, ["", f"version {a['version']}", f"version {b['version']}", "difference", f"{b['version']} is"])
