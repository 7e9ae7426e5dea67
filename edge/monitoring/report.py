"""The monitoring report: one self-contained HTML page (edge/reports.py) of a monitor result: per version that
answered, each feature's distance against its threshold, the distances over the window's time, the categorical
features (the class distribution among them) and the numeric ones, reference against the window."""

from __future__ import annotations

from edge.reports import Report
from edge.ui import number

TEMPLATE = "plotly_white"
REFERENCE_COLOR, CURRENT_COLOR, DRIFT_COLOR, THRESHOLD_COLOR = "#1f77b4", "#ff7f0e", "#d62728", "#59636e"
COLUMNS = 2


DRIFT_HEADERS = ["version", "feature", "kind", "distance", "threshold", "drifted"]


def drift_rows(result: dict) -> list[tuple]:
    """The result's table, a row per (version, feature), as `invoke monitor` prints it and the report shows it."""
    return [
        (
            v["version"],
            r["feature"],
            r["kind"],
            number(r["distance"]),
            number(r["threshold"]),
            "DRIFT" if r["drifted"] else r.get("note", "no"),
        )
        for v in result["versions"]
        for r in v["features"]
    ]


def build_report(result: dict) -> Report:
    """The page of a `run_monitor` result that compared at least one version."""
    status = {"drift": "DRIFT", "ok": "no drift", "too_few_rows": "too few rows"}[result["status"]]
    report = Report(
        f"{result['model']}: monitoring",
        f"{status} - {result['instances']} logged instances ({result['rows']} requests) from {result['since']} "
        f"to {result['until']}, {result['table']}",
    )
    summary = report.section("Result")
    summary.table(drift_rows(result), DRIFT_HEADERS)
    summary.text(_notes(result))
    for version in result["versions"]:
        _version_sections(report, version)
    return report


def _notes(result: dict) -> str:
    notes = [
        "Distances as Vertex AI Model Monitoring computes them: L-infinity for categorical features, "
        "Jensen-Shannon divergence (base 2) for numeric ones over the reference's bins."
    ]
    if result["malformed_rows"]:
        notes.append(f"{result['malformed_rows']} malformed logged rows were skipped.")
    for deployed_id, rows in result["rows_of_undeployed_models"].items():
        notes.append(f"{rows} rows of deployed model {deployed_id}, no longer on the endpoint, were not compared.")
    if result["truncated"]:
        notes.append("The window held more rows than edge reads at once: its latest rows were compared.")
    return " ".join(notes)


def _version_sections(report: Report, version: dict) -> None:
    name = f"version {version['version']}"
    compared = [r for r in version["features"] if r["distance"] is not None]
    section = report.section(
        f"Distance against threshold: {name}",
        f"{version['instances']} instances against the reference of {version['reference_instances']} held-out "
        f"instances ({version['reference']}). Drifted: {', '.join(version['drifted']) or 'nothing'}.",
    )
    section.figure(distance_figure(compared))
    report.section(
        f"Distance over time: {name}",
        "The window cut into slices of as many instances each; each feature's distance as a share of its threshold "
        "(above 1: drift).",
    ).figure(timeline_figure(version["timeline"], compared))
    categorical = [r for r in compared if r["kind"] == "categorical"]
    if categorical:
        report.section(
            f"Categorical features (the class distribution among them): {name}", "Share of each value."
        ).figure(shares_figure(categorical, categorical=True))
    numeric = [r for r in compared if r["kind"] == "numeric"]
    if numeric:
        report.section(
            f"Numeric features: {name}", "Share of instances in each of the reference's bins (its quantiles)."
        ).figure(shares_figure(numeric, categorical=False))


def distance_figure(rows: list[dict]):
    import plotly.graph_objects as go

    names = [r["feature"] for r in rows]
    figure = go.Figure()
    figure.add_bar(
        x=names,
        y=[r["distance"] for r in rows],
        name="distance",
        marker_color=[DRIFT_COLOR if r["drifted"] else CURRENT_COLOR for r in rows],
    )
    figure.add_bar(x=names, y=[r["threshold"] for r in rows], name="threshold", marker_color=THRESHOLD_COLOR)
    figure.update_layout(template=TEMPLATE, barmode="group", height=360, yaxis_title="distance", legend_orientation="h")
    return figure


def timeline_figure(points: list[dict], rows: list[dict]):
    import plotly.graph_objects as go

    thresholds = {r["feature"]: r["threshold"] for r in rows}
    figure = go.Figure()
    times = [p["until"] for p in points]
    for feature, threshold in thresholds.items():
        ratios = [(p["distances"].get(feature) or 0) / threshold for p in points]
        figure.add_scatter(x=times, y=ratios, mode="lines+markers", name=feature)
    figure.add_hline(y=1, line_dash="dash", line_color=DRIFT_COLOR, annotation_text="threshold")
    figure.update_layout(
        template=TEMPLATE, height=380, yaxis_title="distance / threshold", xaxis_title="end of slice (UTC)"
    )
    return figure


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    inner = [f"{a:.3g}-{b:.3g}" for a, b in zip(edges, edges[1:], strict=False)]
    return [f"<{edges[0]:.3g}", *inner, f">={edges[-1]:.3g}"]


def shares_figure(rows: list[dict], categorical: bool):
    """Reference against current shares, one subplot per feature."""
    from plotly.subplots import make_subplots

    cols = min(COLUMNS, len(rows))
    grid = (len(rows) + cols - 1) // cols
    titles = [f"{r['feature']} ({r['distance']:.3f}{' DRIFT' if r['drifted'] else ''})" for r in rows]
    figure = make_subplots(rows=grid, cols=cols, subplot_titles=titles, vertical_spacing=0.5 / grid)
    for i, row in enumerate(rows):
        if categorical:
            labels = sorted({*row["reference"], *row["current"]})
            reference = [row["reference"].get(k, 0.0) for k in labels]
            current = [row["current"].get(k, 0.0) for k in labels]
        else:
            labels, reference, current = _bin_labels(row["edges"]), row["reference"], row["current"]
        where = {"row": i // cols + 1, "col": i % cols + 1}
        first = i == 0
        figure.add_bar(x=labels, y=reference, name="reference", marker_color=REFERENCE_COLOR, showlegend=first, **where)
        figure.add_bar(x=labels, y=current, name="this window", marker_color=CURRENT_COLOR, showlegend=first, **where)
    figure.update_layout(template=TEMPLATE, barmode="group", height=320 * grid, legend_orientation="h")
    return figure
