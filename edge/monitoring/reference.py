"""The reference of a model version: the distribution of every monitored feature on held-out data, with the
version's own predictions on it, stored beside the version's artifact (`<artifactUri>/../monitoring/
reference.json`), so that any deployed version is compared with its own reference.

The evaluation stage computes it when a version is registered (`store_reference`) and puts its URI on the
version's evaluation as `reference_uri`; `invoke monitor` finds it there, or at the path above.
"""

from __future__ import annotations

import json
import logging
import time

from edge.errors import EdgeError
from edge.models import ModelSpec
from edge.monitoring import distances
from edge.monitoring.features import FeatureTable, compute_features

log = logging.getLogger(__name__)

SCHEMA = 1
FILE = "monitoring/reference.json"  # relative to the parent of the version's artifact folder


class ReferenceError(EdgeError):
    """A version's reference is missing or unreadable; the message says what to run."""


def reference_uri_for(artifact_uri: str) -> str:
    """Where the reference of the version whose artifact is at `artifact_uri` lives: gs://.../<run>/monitoring/."""
    return f"{artifact_uri.rstrip('/').rsplit('/', 1)[0]}/{FILE}"


def describe(table: FeatureTable) -> dict:
    """Each feature's distribution: bins (interior edges) and shares for numeric ones, shares for categorical."""
    import numpy as np

    features = {}
    for name, kind in table.kinds.items():
        values = table.values[name]
        if kind == "categorical":
            features[name] = {"kind": kind, "shares": distances.categorical_shares(values)}
            continue
        step = distances.resolution(values)
        edges = distances.numeric_edges(values, step=step)
        array = np.asarray(values, dtype=np.float64)
        summary = (
            {"mean": float(array.mean()), "min": float(array.min()), "max": float(array.max())} if len(values) else {}
        )
        features[name] = {
            "kind": kind,
            "resolution": step,
            "edges": edges,
            "shares": distances.numeric_shares(values, edges, step),
            "summary": summary,
        }
    return features


def compute_reference(spec: ModelSpec, instances: list, predictions: list) -> dict:
    """The reference document of `instances` (held-out data) and the model's `predictions` on them."""
    if len(instances) != len(predictions) or len(instances) == 0:
        raise ReferenceError(
            f"a reference needs predictions for every instance, got {len(instances)} instances "
            f"and {len(predictions)} predictions"
        )
    table = compute_features(spec, instances, predictions)
    return {
        "schema": SCHEMA,
        "model": spec.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "instances": table.instances,
        "features": describe(table),
    }


def store_reference(storage_client, spec: ModelSpec, artifact_uri: str, instances: list, predictions: list) -> str:
    """Computes the reference of a version (held-out `instances`, the version's `predictions` on them) and
    writes it beside the version's artifact; returns its gs:// URI (the evaluation's `reference_uri`)."""
    reference = compute_reference(spec, instances, predictions)
    uri = reference_uri_for(artifact_uri)
    bucket, name = uri.removeprefix("gs://").split("/", 1)
    storage_client.bucket(bucket).blob(name).upload_from_string(
        json.dumps(reference, indent=1), content_type="application/json"
    )
    log.info("reference of %d held-out instances written to %s", reference["instances"], uri)
    return uri


def load_reference(storage_client, uri: str) -> dict:
    """The reference at `uri`; ReferenceError when it is not there or not a reference."""
    from google.api_core.exceptions import NotFound

    if not uri.startswith("gs://") or "/" not in uri.removeprefix("gs://"):
        raise ReferenceError(f"reference URI {uri!r} is not a gs:// object")
    bucket, name = uri.removeprefix("gs://").split("/", 1)
    try:
        document = json.loads(storage_client.bucket(bucket).blob(name).download_as_bytes())
    except NotFound:
        raise ReferenceError(f"no reference at {uri}") from None
    except ValueError as exc:
        raise ReferenceError(f"the reference at {uri} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA or "features" not in document:
        raise ReferenceError(f"{uri} is not a monitoring reference of schema {SCHEMA}")
    return document


def store_version_reference(project, model, version_name: str, instances, predictions) -> str:
    """`store_reference` for registry version `version_name` (projects/.../models/ID@VERSION), whose artifact URI
    comes from the registry: what the evaluate stage calls, before it imports the evaluation with the URI."""
    artifact = project.vertex().Model(version_name).uri
    return store_reference(project.target.storage_client(), project.spec(model), artifact, instances, predictions)
