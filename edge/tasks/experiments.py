"""Experiment runs, kept in the project bucket: list them, compare two, draw a report, reach the dashboard."""

from __future__ import annotations

from invoke import Collection, Exit, task

from edge.tasks.common import JSON_HELP, MODEL_HELP, TARGET_HELP, session

COLUMNS = ("run", "when", "who", "status", "commit", "data", "epochs", "lr", "accuracy", "version", "deployed")
DIRTY_MARK = "-dirty"  # after the commit of a run whose working tree differed from it


def _row(run: dict, deployed: set[str]) -> tuple:
    version = str((run["result"].get("model") or {}).get("version", "-"))
    accuracy = run["result"].get("accuracy")
    return (
        run["id"],
        (run["start"] or "")[:19],
        run["who"],
        run["status"],
        str(run["info"].get("git_commit", ""))[:8] + (DIRTY_MARK if run["dirty"] else ""),
        str(run["info"].get("data", ""))[:8],
        run["config"].get("epochs"),
        run["config"].get("learning_rate"),
        f"{accuracy:.4f}" if accuracy is not None else None,
        version,
        "yes" if version in deployed else "",
    )


def _run_ids(text: str, option: str) -> list[int]:
    parts = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise Exit(f"edge: {option} takes run ids separated by commas, e.g. {option} 3,5", code=1)
    return [int(part) for part in parts]


def _pair(compare: str, runs: list[dict]) -> tuple[dict, dict]:
    ids = _run_ids(compare, "--compare")
    if len(ids) != 2:
        raise Exit("edge: --compare takes two run ids, e.g. --compare 3,5", code=1)
    by_id = {r["id"]: r for r in runs}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise Exit(f"edge: no run {missing[0]} (runs: {', '.join(map(str, by_id)) or 'none'})", code=1)
    return by_id[ids[0]], by_id[ids[1]]


@task(
    default=True,
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "compare": "two run ids separated by a comma (e.g. 3,5): show what differs",
        "json_": JSON_HELP,
    },
)
def show(c, model=None, target=None, compare=None, json_=False):
    """The runs in the bucket: id, when, who, commit (-dirty: uncommitted changes), data, params, accuracy,
    model version, deployed. Runs left in this clone's .edge/experiments/ are uploaded first (once)."""
    from edge import experiments, ui

    with session(target) as project:
        spec = project.config.model(model)
        uploaded = experiments.upload_local_runs(project, spec)
        runs = experiments.list_runs(project, spec)
        deployed = {d.version for d in project.state.read().model(spec.name).deployed}
    if uploaded and not json_:
        moved = ", ".join(f"{local} as {remote}" for local, remote in uploaded)
        ui.show(f"uploaded {len(uploaded)} runs of {spec.name} from .edge/experiments/ to the bucket: {moved}")
    if compare:
        a, b = _pair(compare, runs)
        rows = experiments.differences(a, b)
        if json_:
            ui.show_json([{"field": k, "a": x, "b": y} for k, x, y in rows])
        else:
            ui.show_table(rows, ["field", f"run {a['id']}", f"run {b['id']}"])
        return
    if json_:
        ui.show_json(runs)
    elif runs:
        ui.show_table([_row(r, deployed) for r in runs], COLUMNS)
    else:
        ui.show(f"no runs of {spec.name} yet: invoke train")


@task(
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "runs": "run ids separated by commas (e.g. 3,5,8; default: every run)",
        "json_": JSON_HELP,
    }
)
def report(c, model=None, target=None, runs=None, json_=False):
    """One HTML page with plots (learning curves, final accuracy against params, timeline with versions),
    viewable offline; written under .edge/reports/experiments/ and to gs://<bucket>/reports/experiments/."""
    from edge import ui
    from edge.experiments.report import write_report

    ids = set(_run_ids(runs, "--runs")) if runs else None
    with session(target) as project:
        written = write_report(project, project.config.model(model), ids)
    if json_:
        ui.show_json(written)
        return
    ui.show(f"report of runs {', '.join(map(str, written['runs']))} ({written['figures']} plots):")
    ui.show(f"  {written['local']}")
    ui.show(f"  {written['remote']}")


@task(help={"target": TARGET_HELP})
def dashboard(c, target=None):
    """Where to look at the runs: on gcp the IAP tunnel command and URL of Omniboard; offline, the report."""
    from edge import ui

    with session(target) as project:
        text = project.target.dashboard(project)
    ui.show(text)


ns = Collection("experiments", show, report, dashboard)
