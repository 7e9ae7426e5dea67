"""`invoke evaluate --report`: one self-contained HTML page of a version's evaluation (edge/reports.py): the summary,
the confusion matrix as a heatmap, per-class bars, the reliability diagram, the behavioural tests and the lineage."""

from __future__ import annotations

import time

from edge.config import ModelConfig
from edge.evaluation.show import behaviour_rows, behaviour_verdict, class_rows, summary_rows
from edge.project import Project
from edge.reports import Report


def write_report(project: Project, model: ModelConfig, shown: dict) -> dict:
    """Writes the page of `shown` (edge.evaluation.show.view) under `.edge/reports/evaluations/` and to
    `gs://<bucket>/reports/evaluations/<model>/`; returns {"local", "remote", "figures"}."""
    report = build_report(model.name, shown)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"v{shown['version']}-{stamp}.html"
    local = report.write(project.home / "reports" / "evaluations" / f"{model.name}-{name}")
    remote = report.upload(project.bucket, f"reports/evaluations/{model.name}/{name}")
    return {"local": str(local), "remote": remote, "figures": report.figures}


def build_report(model_name: str, shown: dict) -> Report:
    subtitle = (
        f"{shown.get('instances') or '?'} held-out {shown.get('split') or ''} instances, evaluated "
        f"{shown.get('evaluated_at') or ''} by {shown.get('evaluated_by') or '?'}; "
        f"{behaviour_verdict(shown['behaviour'])}"
    )
    report = Report(f"{model_name} version {shown['version']}: evaluation", subtitle)
    report.section("Summary").table(summary_rows(shown), ["metric", "value"])
    report.section("Confusion matrix", "Rows: the actual class; columns: the predicted class.").figure(
        confusion_figure(shown)
    )
    classes = report.section("Per class", "Precision, recall and F1 of each class on the held-out split.")
    classes.figure(classes_figure(shown))
    classes.table(class_rows(shown), ["class", "precision", "recall", "F1", "instances"])
    report.section(
        "Calibration",
        "Accuracy against mean confidence (the highest probability) in 15 bins; a calibrated model follows the "
        f"diagonal. Expected calibration error: {shown['summary'].get('ece', 0):.4f}.",
    ).figure(reliability_figure(shown))
    tests = report.section("Behavioural tests", "Invariance: the share of perturbed instances whose prediction held.")
    if any(t["kind"] == "invariance" for t in shown["behaviour"].get("tests", [])):
        tests.figure(behaviour_figure(shown))
    tests.table(behaviour_rows(shown), ["test", "value", "minimum", "result"])
    lineage = {**shown.get("lineage", {}).get("labels", {}), **shown.get("lineage", {})}
    lineage.pop("labels", None)
    rows = [(k, v) for k, v in sorted(lineage.items())] + [("held-out data", shown.get("heldout"))]
    report.section("Lineage", f"Evaluation {shown['evaluation']}").table(rows, ["what", "value"])
    return report


def confusion_figure(shown: dict):
    import plotly.graph_objects as go

    labels = shown["labels"]
    figure = go.Figure(
        go.Heatmap(
            z=shown["confusion"],
            x=labels,
            y=labels,
            colorscale="Blues",
            text=shown["confusion"],
            texttemplate="%{text}",
            hovertemplate="actual %{y}<br>predicted %{x}<br>%{z} instances<extra></extra>",
        )
    )
    figure.update_layout(height=560, xaxis_title="predicted", yaxis_title="actual", yaxis_autorange="reversed")
    return figure


def classes_figure(shown: dict):
    import plotly.graph_objects as go

    names = [row["class"] for row in shown["classes"]]
    figure = go.Figure(
        [
            go.Bar(name=key, y=names, x=[row[key] for row in shown["classes"]], orientation="h")
            for key in ("precision", "recall", "f1")
        ]
    )
    minimum = shown.get("thresholds", {}).get("min_class_recall")
    if minimum:
        figure.add_vline(x=minimum, line_dash="dash", annotation_text=f"minimum recall {minimum:g}")
    figure.update_layout(barmode="group", height=120 + 45 * len(names), xaxis_range=[0, 1], yaxis_automargin=True)
    return figure


def reliability_figure(shown: dict):
    import plotly.graph_objects as go

    bins = [b for b in shown.get("calibration", []) if b.get("count")]
    figure = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"dash": "dash"}),
            go.Scatter(
                x=[b["confidence"] for b in bins],
                y=[b["accuracy"] for b in bins],
                mode="lines+markers",
                name="model",
                text=[f"{int(b['count'])} instances" for b in bins],
                marker={"size": [6 + 20 * (b["count"] / max(c["count"] for c in bins)) ** 0.5 for b in bins]},
            ),
        ]
    )
    figure.update_layout(height=460, xaxis_title="mean confidence", yaxis_title="accuracy", xaxis_range=[0, 1])
    return figure


def behaviour_figure(shown: dict):
    import plotly.graph_objects as go

    tests = [t for t in shown["behaviour"]["tests"] if t["kind"] == "invariance"]
    figure = go.Figure(
        [
            go.Bar(
                y=[t["name"] for t in tests],
                x=[t["value"] for t in tests],
                orientation="h",
                name="pass rate",
                marker_color=["#2da44e" if t["passed"] else "#cf222e" for t in tests],
            ),
            go.Scatter(
                y=[t["name"] for t in tests],
                x=[t["minimum"] for t in tests],
                mode="markers",
                name="minimum",
                marker={"symbol": "line-ns-open", "size": 24, "color": "#1f2328"},
            ),
        ]
    )
    figure.update_layout(height=140 + 50 * len(tests), xaxis_range=[0, 1], yaxis_automargin=True)
    return figure
