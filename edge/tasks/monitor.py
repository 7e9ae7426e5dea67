"""Drift monitoring: a time window of the endpoint's logged requests against the reference of the version that
answered them; exit code 3 when something drifted (CI or cron alert on it)."""

from __future__ import annotations

from invoke import Collection, Exit, task

from edge.tasks.common import JSON_HELP, MODEL_HELP, TARGET_HELP, session


@task(
    default=True,
    help={
        "model": MODEL_HELP,
        "target": TARGET_HELP,
        "since": "start of the window: a duration before --until (30m, 24h, 7d) or a time (default 24h)",
        "until": "end of the window: a time such as 2025-01-31T12:00:00Z (default: now)",
        "json_": JSON_HELP,
    },
)
def check(c, model=None, target=None, since="24h", until=None, json_=False):
    """Compare the window's logged requests with each serving version's reference (L-infinity for categorical
    features, Jensen-Shannon for numeric ones); write the HTML report and the JSON result locally and to
    gs://<bucket>/monitoring/<model>/<time>/; exit 3 on drift, 0 otherwise."""
    from edge import ui
    from edge.monitoring.monitor import DRIFT_EXIT_CODE, run_monitor

    with session(target) as project:
        result = run_monitor(project, project.config.model(model), since, until)
    if json_:
        ui.show_json(result)
    else:
        _show(result)
    if result["status"] == "drift":
        drifted = "; ".join(
            f"version {v['version']}: {', '.join(v['drifted'])}" for v in result["versions"] if v["drifted"]
        )
        raise Exit(f"edge: {result['model']} drifted ({drifted})", code=DRIFT_EXIT_CODE)


def _show(result: dict) -> None:
    from edge import ui
    from edge.monitoring.report import DRIFT_HEADERS, drift_rows

    ui.show(
        f"{result['model']}: {result['instances']} logged instances ({result['rows']} requests) "
        f"from {result['since']} to {result['until']}, {result['table']}"
    )
    if result["malformed_rows"]:
        ui.show(f"  {result['malformed_rows']} malformed rows skipped")
    for deployed_id, rows in result["rows_of_undeployed_models"].items():
        ui.show(f"  {rows} rows of deployed model {deployed_id}, no longer on the endpoint, not compared")
    if result["status"] == "too_few_rows":
        ui.show(
            f"too few logged instances to compare: at least {result['min_rows']} per version are needed "
            "(monitoring.min_rows in edge.yaml); nothing compared"
        )
        return
    ui.show_table(drift_rows(result), DRIFT_HEADERS)
    ui.show(f"report ({result['figures']} plots) and result.json:\n  {result['local']}\n  {result['remote']}")


ns = Collection("monitor", check)
