"""`invoke monitor`: the logged requests of a time window against the reference of the version that answered
them, feature by feature, with Vertex's distances and edge.yaml's thresholds; the result (JSON) and the HTML
report go to a local folder and to `gs://<bucket>/monitoring/<model>/<time>/`.

The result's "status" is "ok", "drift" (exit code 3, so CI or cron can alert) or "too_few_rows" (nothing was
compared; exit code 0).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from edge.config import ModelConfig, Monitoring
from edge.errors import EdgeError
from edge.monitoring import distances
from edge.monitoring.features import FeatureTable, compute_features, monitored_features, subset
from edge.monitoring.reference import load_reference, reference_uri_for
from edge.monitoring.window import Requests, Window, from_micros, parse_window, read_window
from edge.project import Project

log = logging.getLogger(__name__)

DRIFT_EXIT_CODE = 3
MAX_SLICES = 12  # points of the "distance over time" plot


class MonitorError(EdgeError):
    """Monitoring cannot run; the message says what to do."""


@dataclass
class Served:
    """A deployed model seen in the window: its version and where that version's reference is."""

    deployed_model_id: str
    version: str
    version_name: str  # projects/.../models/ID@VERSION
    reference_uri: str


def compare(reference: dict, table: FeatureTable, monitoring: Monitoring) -> list[dict]:
    """One row per monitored feature: its distance to the reference, the threshold and whether it drifted,
    with both distributions (for the report)."""
    rows = []
    for name, kind in table.kinds.items():
        known = reference["features"].get(name)
        values = table.values[name]
        if known is None or known["kind"] != kind or not values:
            why = "not in the reference" if known is None or known["kind"] != kind else "no valid instances"
            rows.append(
                {"feature": name, "kind": kind, "distance": None, "threshold": None, "drifted": False, "note": why}
            )
            continue
        if kind == "categorical":
            current = distances.categorical_shares(values)
            distance = distances.linf_distance(known["shares"], current)
        else:
            current = distances.numeric_shares(values, known["edges"], known.get("resolution", 0.0))
            distance = distances.js_divergence(known["shares"], current)
        threshold = monitoring.threshold(name, kind)
        rows.append(
            {
                "feature": name,
                "kind": kind,
                "distance": round(distance, 6),
                "threshold": threshold,
                "drifted": distance > threshold,
                "reference": known["shares"],
                "current": current,
                **({"edges": known["edges"]} if kind == "numeric" else {}),
            }
        )
    return rows


def timeline(reference: dict, table: FeatureTable, requests: Requests, monitoring: Monitoring) -> list[dict]:
    """The distances over time: the window cut into up to MAX_SLICES slices of as many instances each (at least
    `min_rows` per slice), each compared with the reference."""
    count = table.instances
    slices = max(1, min(MAX_SLICES, count // monitoring.min_rows))
    points = []
    for k in range(slices):
        indexes = list(range(k * count // slices, (k + 1) * count // slices))
        rows = compare(reference, subset(table, indexes), monitoring)
        points.append(
            {
                "until": from_micros(requests.times[indexes[-1]]).isoformat(),
                "instances": len(indexes),
                "distances": {r["feature"]: r["distance"] for r in rows},
            }
        )
    return points


def served_models(project: Project, endpoint, deployed_ids) -> dict[str, Served]:
    """The window's deployed models that are still on the endpoint (a GAPIC `Endpoint`), with their versions and
    references."""
    on_endpoint = {d.id: d for d in endpoint.deployed_models}
    served = {}
    client = None
    for deployed_id in deployed_ids:
        deployed = on_endpoint.get(deployed_id)
        if deployed is None:
            continue
        client = client or project.target.model_service_client()
        version_name = f"{deployed.model}@{deployed.model_version_id}"
        artifact = client.get_model(name=version_name).artifact_uri
        uri = _evaluation_reference(project, version_name) or reference_uri_for(artifact)
        served[deployed_id] = Served(deployed_id, deployed.model_version_id, version_name, uri)
    return served


def _evaluation_reference(project: Project, version_name: str) -> str | None:
    """The `reference_uri` of the version's newest evaluation (edge/evaluation), or None."""
    from google.api_core.exceptions import GoogleAPICallError

    try:
        from edge.evaluation.registry import latest_evaluation

        record = latest_evaluation(project, version_name)
    except (ImportError, GoogleAPICallError):
        return None
    return ((record or {}).get("metadata") or {}).get("reference_uri")


def logged_table(project: Project, model: ModelConfig):
    """(the model's endpoint as a GAPIC `Endpoint`, its request log table as project.dataset.table); MonitorError
    when there is no endpoint or it does not log. Read with the GAPIC client: the SDK's import costs seconds."""
    from google.api_core.exceptions import NotFound

    from edge.monitoring import request_logging

    name = project.state.read().model(model.name).endpoint
    if not name:
        raise MonitorError(f"{model.name} has no endpoint yet: run `invoke deploy`")
    try:
        endpoint = project.target.endpoint_service_client().get_endpoint(name=name)
    except NotFound:
        raise MonitorError(f"the endpoint of {model.name} ({name}) is gone: run `invoke deploy`") from None
    logging_config = request_logging.read(endpoint)
    if not logging_config.logs:
        raise MonitorError(
            f"the endpoint of {model.name} does not log its requests: set monitoring.sampling_rate above 0 in "
            "edge.yaml, then `invoke deploy` turns request-response logging on"
        )
    return endpoint, logging_config.table.removeprefix("bq://")


def check_versions(project: Project, window: Window, endpoint) -> tuple[dict, dict]:
    """({deployed id: (Served, reference)} of the window's versions, {deployed id: rows} of the others)."""
    served = served_models(project, endpoint, window.by_deployed_model)
    storage = project.target.storage_client()
    known = {d: (s, load_reference(storage, s.reference_uri)) for d, s in served.items()}
    unknown = {d: r.rows for d, r in window.by_deployed_model.items() if d not in served}
    return known, unknown


def run_monitor(project: Project, model: ModelConfig, since: str = "24h", until: str | None = None) -> dict:
    """Compares the window with the references of the versions that answered; writes the result and the report
    (unless too few requests were logged); returns the result."""
    spec = project.spec(model)
    monitored_features(spec)  # a model without features fails before anything is read
    start, end = parse_window(since, until)
    endpoint, table = logged_table(project, model)
    began = time.monotonic()
    window = read_window(project.target.bigquery_client(), table, start, end)
    log.debug("read %d rows of bq://%s in %.2f s", window.rows, table, time.monotonic() - began)
    known, unknown = check_versions(project, window, endpoint)
    versions = []
    for deployed_id, (served, reference) in known.items():
        requests = window.by_deployed_model[deployed_id]
        if len(requests.instances) < model.monitoring.min_rows:
            continue
        features = compute_features(spec, requests.instances, requests.predictions)
        rows = compare(reference, features, model.monitoring)
        versions.append(
            {
                "version": served.version,
                "deployed_model_id": deployed_id,
                "reference": served.reference_uri,
                "reference_instances": reference.get("instances"),
                "requests": requests.rows,
                "instances": features.instances,
                "features": rows,
                "drifted": [r["feature"] for r in rows if r["drifted"]],
                "timeline": timeline(reference, features, requests, model.monitoring),
            }
        )
    result = _result(model, window, versions, unknown)
    if versions:
        result.update(write_result(project, model, result))
    return result


def _result(model: ModelConfig, window: Window, versions: list[dict], unknown: dict) -> dict:
    drifted = any(v["drifted"] for v in versions)
    return {
        "model": model.name,
        "status": "drift" if drifted else "ok" if versions else "too_few_rows",
        "since": window.since.isoformat(),
        "until": window.until.isoformat(),
        "table": f"bq://{window.table}",
        "rows": window.rows,
        "malformed_rows": window.malformed,
        "truncated": window.truncated,
        "min_rows": model.monitoring.min_rows,
        "instances": sum(len(r.instances) for r in window.by_deployed_model.values()),
        "rows_of_undeployed_models": unknown,
        "versions": versions,
    }


def write_result(project: Project, model: ModelConfig, result: dict) -> dict:
    """The report and the JSON result, under .edge/reports/monitoring/<model>/<time>/ and in the bucket at
    monitoring/<model>/<time>/; returns {"local": folder, "remote": gs:// folder, "figures": n}."""
    from edge.monitoring.report import build_report

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = project.home / "reports" / "monitoring" / model.name / stamp
    prefix = f"monitoring/{model.name}/{stamp}"
    report = build_report(result)
    report.write(folder / "report.html")
    report.upload(project.bucket, f"{prefix}/report.html")
    written = {"local": str(folder), "remote": f"gs://{project.config.bucket}/{prefix}", "figures": report.figures}
    text = json.dumps({**result, **written}, indent=1, default=str)
    (folder / "result.json").write_text(text + "\n")
    project.bucket.blob(f"{prefix}/result.json").upload_from_string(text, content_type="application/json")
    return written
