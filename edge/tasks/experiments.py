"""Experiment runs recorded by Sacred: list them, compare two."""

from __future__ import annotations

from invoke import Collection, Exit, task

from edge.tasks.common import MODEL_HELP, TARGET_HELP, open_project, user_errors


@task(
    default=True,
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "compare": "two run ids separated by a comma (e.g. 3,5): show what differs",
    },
)
def show(c, model=None, target=None, compare=None):
    """A table of runs (id, when, who, commit, data, params, accuracy, model version, deployed)."""
    from edge import experiments

    with user_errors():
        project = open_project(target)
        spec = project.config.model(model)
        runs = experiments.list_runs(project, spec)
        deployed = {
            d["version"] for d in project.state.read()[0].get("models", {}).get(spec.name, {}).get("deployed", [])
        }
    if compare:
        ids = [part.strip() for part in compare.replace(" ", ",").split(",") if part.strip()]
        if len(ids) != 2 or not all(i.isdigit() for i in ids):
            raise Exit("edge: --compare takes two run ids, e.g. --compare 3,5", code=1)
        by_id = {str(r["id"]): r for r in runs}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise Exit(f"edge: no run {missing[0]} (runs: {', '.join(by_id) or 'none'})", code=1)
        for key, a, b in experiments.differences(by_id[ids[0]], by_id[ids[1]]):
            print(f"{key:28} {a!s:>24}  {b!s:>24}")
        return
    if not runs:
        if experiments.mongo_uri(project):
            print(f"runs of {spec.name} are recorded in MongoDB: `invoke experiments.dashboard` opens Omniboard")
        else:
            print(f"no runs of {spec.name} yet: invoke train")
        return
    print(
        f"{'run':>4} {'when':19} {'who':14} {'status':11} {'commit':8} {'data':8} {'epochs':>6} "
        f"{'lr':>7} {'accuracy':>8} {'version':>7} deployed"
    )
    for r in runs:
        version = str((r["result"].get("model") or {}).get("version", "-"))
        accuracy = r["result"].get("accuracy")
        print(
            f"{r['id']:>4} {(r['start'] or '')[:19]:19} {str(r['host'])[:14]:14} {str(r['status'])[:11]:11} "
            f"{str(r['info'].get('git_commit', '-'))[:8]:8} {str(r['info'].get('data', '-'))[:8]:8} "
            f"{r['config'].get('epochs', '-'):>6} {r['config'].get('learning_rate', '-'):>7} "
            f"{f'{accuracy:.4f}' if accuracy is not None else '-':>8} {version:>7} "
            f"{'yes' if version in deployed else ''}"
        )


@task(help={"target": TARGET_HELP})
def dashboard(c, target=None):
    """How to reach Omniboard on gcp (IAP tunnel command and local URL)."""
    from edge import infra

    with user_errors():
        project = open_project(target)
        if project.target.is_local:
            print(
                f"on the twin, runs are Sacred file-store folders under {project.home / 'experiments'}; "
                "`invoke experiments` lists them"
            )
            return
        tracker = project.state.read()[0].get("infra", {}).get("tracker")
        print(infra.dashboard_instructions(project.config, tracker))


ns = Collection("experiments", show, dashboard)
