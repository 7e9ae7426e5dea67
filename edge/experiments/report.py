"""The experiments report: learning curves per run, the final metric against each param that varies, and the
runs' timeline with their model versions and the ones that serve. One self-contained HTML page (edge.reports)."""

from __future__ import annotations

import json
import math
import time

from edge.config import ModelConfig
from edge.experiments.store import ExperimentsError, flatten
from edge.project import Project
from edge.reports import Report

METRIC = "accuracy"  # the final metric of a run (its result, measured on the test split)
CURVES = (("loss", "loss", "val_loss"), ("accuracy", "accuracy", "val_accuracy"))
TRAIN_COLOR, VALIDATION_COLOR = "#1f77b4", "#ff7f0e"
PARAMS_PER_ROW = 3
TEMPLATE = "plotly_white"


def write_report(project: Project, model: ModelConfig, ids: set[int] | None = None) -> dict:
    """Builds the report of the model's runs (all, or `ids`), writes it under `.edge/reports/experiments/` and to
    `gs://<bucket>/reports/experiments/<model>/`; returns {"local", "remote", "runs", "figures"}."""
    from edge import experiments

    runs = experiments.list_runs(project, model, ids)
    if not runs:
        raise ExperimentsError(f"no runs of {model.name} yet: invoke train")
    missing = sorted((ids or set()) - {run["id"] for run in runs})
    if missing:
        known = ", ".join(str(r["id"]) for r in experiments.list_runs(project, model))
        raise ExperimentsError(f"no run {missing[0]} of {model.name} (runs: {known})")
    serving = {d.version: d.traffic for d in project.state.read().model(model.name).deployed}
    report = build_report(model.name, runs, serving)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    local = report.write(project.home / "reports" / "experiments" / f"{model.name}-{stamp}.html")
    remote = report.upload(project.bucket, f"reports/experiments/{model.name}/{stamp}.html")
    return {"local": str(local), "remote": remote, "runs": [r["id"] for r in runs], "figures": report.figures}


def build_report(model_name: str, runs: list[dict], serving: dict[str, int]) -> Report:
    """The page for `runs` (as experiments.list_runs gives them); `serving` maps version -> traffic %."""
    ids = ", ".join(str(r["id"]) for r in runs)
    report = Report(
        f"{model_name}: experiments", f"{len(runs)} runs ({ids}), written {time.strftime('%Y-%m-%d %H:%M')}"
    )
    varied = varied_params(runs)
    report.section("Runs").table(*_runs_table(runs, varied, serving))
    timeline = report.section("Timeline", "Each run at its start; the marker's label is the model version it made.")
    timeline.figure(timeline_figure(runs, serving))
    params = report.section(f"Final {METRIC} against each parameter that varies")
    if varied:
        params.figure(params_figure(runs, varied))
    else:
        params.text("These runs share every parameter.")
    curves = report.section("Learning curves", "Loss and accuracy per epoch, on the training and validation splits.")
    for run in runs:
        if any(run["metrics"].get(name) for _, *names in CURVES for name in names):
            curves.figure(curves_figure(run, serving))
        else:
            curves.text(f"run {run['id']} ({run['status']}) logged no metrics.")
    dirty = [r for r in runs if r["info"].get("git_diff")]
    if dirty:
        changes = report.section("Uncommitted changes", "What differed from the commit when a dirty run started.")
        for run in dirty:
            files = ", ".join(run["info"].get("git_changed_files") or [])
            changes.code(run["info"]["git_diff"], f"run {run['id']}: {files}")
    return report


def _version(run: dict) -> str | None:
    version = (run["result"].get("model") or {}).get("version")
    return None if version is None else str(version)


def varied_params(runs: list[dict]) -> dict[str, list]:
    """param -> its value in each run, for the params whose value is not the same in all runs."""
    flat = [flatten("", run["config"]) for run in runs]
    keys = sorted(set().union(*flat))
    values = {key: [f.get(key) for f in flat] for key in keys}
    return {k: v for k, v in values.items() if len({json.dumps(x, sort_keys=True) for x in v}) > 1}


def _runs_table(runs: list[dict], varied: dict[str, list], serving: dict[str, int]) -> tuple[list, list]:
    headers = ["run", "started", "who", "commit", "status", *varied, METRIC, "version", "serving"]
    rows = []
    for i, run in enumerate(runs):
        commit = str(run["info"].get("git_commit", ""))[:8] + ("-dirty" if run["dirty"] else "")
        accuracy = run["result"].get(METRIC)
        version = _version(run)
        rows.append(
            [
                run["id"],
                (run["start"] or "")[:19].replace("T", " "),
                run["who"],
                commit,
                run["status"],
                *(json.dumps(values[i]) if isinstance(values[i], list) else values[i] for values in varied.values()),
                f"{accuracy:.4f}" if accuracy is not None else None,
                version,
                f"{serving[version]}%" if version in serving else "",
            ]
        )
    return rows, headers


def curves_figure(run: dict, serving: dict[str, int]):
    """Loss and accuracy per epoch of one run, training and validation."""
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=[title for title, *_ in CURVES])
    for col, (_, train, validation) in enumerate(CURVES, start=1):
        for name, label, color, dash in (
            (train, "training", TRAIN_COLOR, "solid"),
            (validation, "validation", VALIDATION_COLOR, "dash"),
        ):
            series = run["metrics"].get(name) or {}
            figure.add_trace(
                go.Scatter(
                    x=series.get("steps", []),
                    y=series.get("values", []),
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    mode="lines+markers",
                    line={"color": color, "dash": dash},
                ),
                row=1,
                col=col,
            )
        figure.update_xaxes(title_text="epoch", dtick=1, row=1, col=col)
    version = _version(run)
    serves = f", serving {serving[version]}%" if version in serving else ""
    title = f"run {run['id']}" + (f": version {version}{serves}" if version else f" ({run['status']})")
    figure.update_layout(title=title, height=320, margin={"t": 60, "b": 40}, template=TEMPLATE)
    return figure


def params_figure(runs: list[dict], varied: dict[str, list]):
    """The final metric of each run against each varied param, one panel per param."""
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    cols = min(PARAMS_PER_ROW, len(varied))
    rows = math.ceil(len(varied) / cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=list(varied), vertical_spacing=0.18)
    metric = [run["result"].get(METRIC) for run in runs]
    labels = [f"run {run['id']}" for run in runs]
    for index, (param, values) in enumerate(varied.items()):
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None)
        x = values if numeric else [json.dumps(v) for v in values]
        figure.add_trace(
            go.Scatter(
                x=x,
                y=metric,
                mode="markers+text",
                text=labels,
                textposition="top center",
                cliponaxis=False,
                name=param,
                showlegend=False,
            ),
            row=index // cols + 1,
            col=index % cols + 1,
        )
        figure.update_xaxes(
            title_text=param, type=None if numeric else "category", row=index // cols + 1, col=index % cols + 1
        )
    figure.update_yaxes(title_text=METRIC)
    figure.update_layout(height=320 * rows, margin={"t": 40, "b": 40}, template=TEMPLATE)
    return figure


def timeline_figure(runs: list[dict], serving: dict[str, int]):
    """Runs at their start time and final metric, labelled with their model version; serving versions starred,
    runs without a result (failed, interrupted, running) crossed at the bottom."""
    from plotly import graph_objects as go

    scored = [r for r in runs if r["result"].get(METRIC) is not None]
    floor = min((r["result"][METRIC] for r in scored), default=0.0)
    groups = {
        "runs": [r for r in scored if _version(r) not in serving],
        "serving": [r for r in scored if _version(r) in serving],
        "no result": [r for r in runs if r["result"].get(METRIC) is None],
    }
    markers = {
        "runs": {"size": 11, "color": TRAIN_COLOR},
        "serving": {"size": 20, "color": "#d4a017", "symbol": "star", "line": {"width": 1, "color": "#6b5200"}},
        "no result": {"size": 11, "color": "#8c959f", "symbol": "x"},
    }
    figure = go.Figure()
    for name, group in groups.items():
        if not group:
            continue
        figure.add_trace(
            go.Scatter(
                x=[r["start"] for r in group],
                y=[floor if r["result"].get(METRIC) is None else r["result"][METRIC] for r in group],
                mode="markers+text",
                name=name,
                marker=markers[name],
                text=[f"v{_version(r)}" if _version(r) else f"run {r['id']}" for r in group],
                textposition="top center",
                cliponaxis=False,
                hovertext=[_hover(r, serving) for r in group],
                hoverinfo="text",
            )
        )
    figure.update_layout(
        height=360, xaxis_title="started (UTC)", yaxis_title=METRIC, margin={"t": 30, "b": 40}, template=TEMPLATE
    )
    return figure


def _hover(run: dict, serving: dict[str, int]) -> str:
    version = _version(run)
    lines = [
        f"run {run['id']} by {run['who']}",
        f"commit {str(run['info'].get('git_commit', ''))[:8]}{' (dirty)' if run['dirty'] else ''}",
        f"status {run['status']}",
    ]
    if version:
        lines.append(f"version {version}" + (f", serving {serving[version]}%" if version in serving else ""))
    return "<br>".join(lines)
