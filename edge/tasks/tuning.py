"""Hyperparameter tuning: `invoke tune` runs a Vertex hyperparameter tuning job over params.yaml's `tune:`."""

from __future__ import annotations

from invoke import Exit, task

from edge.tasks.common import JSON_HELP, MODEL_HELP, TARGET_HELP, WAIT_HELP, locked_model


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "wait": WAIT_HELP,
        "register_best": "register the best trial's model as a new version, evaluated (the deploy gate judges it)",
        "json_": JSON_HELP,
    }
)
def tune(c, model=None, target=None, wait=0, register_best=False, json_=False):
    """Tune the `train:` params in `tune:`'s search space: a trial per set, each an experiment run; the best shown."""
    from edge import ui
    from edge.training.tune import run_tuning

    with locked_model(target, model, "tune", wait) as (project, spec):
        result = run_tuning(project, spec, register_best=register_best)
    if json_:
        ui.show_json(result)
    else:
        _show(result)
    if result["state"] != "JOB_STATE_SUCCEEDED":
        raise Exit(f"edge: tuning job {result['job']} ended {result['state']}: {result['error']}", code=1)
    if register_best and result["registered"] is None:
        raise Exit("edge: no trial succeeded: nothing registered", code=1)


def _show(result: dict) -> None:
    from edge import ui

    names = result["parameters"]
    metric = result["metric"]
    rows = [
        (
            t["trial"],
            t["state"].lower(),
            *(_value(t["parameters"].get(n)) for n in names),
            f"{t['metric']:.4f}" if t["metric"] is not None else None,
            t["run"],
            "best" if result["best"] and t["trial"] == result["best"]["trial"] else "",
        )
        for t in result["trials"]
    ]
    ui.show_table(rows, ["trial", "state", *names, metric, "run", ""])
    best = result["best"]
    if best is None:
        ui.show(f"no trial succeeded; see {result['job']}")
        return
    given = " ".join(f"{n}={_value(v)}" for n, v in best["parameters"].items())
    goal = "highest" if result["goal"] == "MAXIMIZE" else "lowest"
    ui.show(f"best: trial {best['trial']} ({goal} {metric}, {best['metric']:.4f}): {given}; run {best['run']}")
    if result["registered"]:
        from edge.evaluation.show import summary_line

        version = result["registered"]["version"]
        ui.show(f"registered as version {version}, evaluated on the held-out split:")
        ui.show(summary_line(result["model"], version, result["registered"]["evaluation"]))
        ui.show(f"`invoke deploy --version {version}`: the gate judges it like any other version")


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)
