"""Evaluations in the model registry, where Vertex users look: each is imported onto its version as a Vertex
ModelEvaluation (ModelService `ImportModelEvaluation`, Vertex's classification metrics schema) with one slice per
class (`BatchImportModelEvaluationSlices`), through the GAPIC client the Vertex SDK ships; and read back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.config import ModelConfig
from edge.evaluation.evaluate import finite
from edge.project import Project

if TYPE_CHECKING:
    from edge.evaluation.evaluate import Evaluation

SCHEMA_URI = "gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml"
SLICE_DIMENSION = "annotationSpec"  # Vertex's slice dimension for a classifier's labels
PRODUCER = "edge"  # metadata.producer of the evaluations edge imports (others on the version are left alone)


@dataclass(frozen=True)
class Version:
    """One registry version, read through the GAPIC client (lighter to import than the SDK: the stage starts faster)."""

    registry: str  # projects/.../models/ID
    version: str
    artifact_uri: str
    labels: dict

    @property
    def name(self) -> str:
        return f"{self.registry}@{self.version}"


def registry_version(project: Project, model: ModelConfig, version: str | None) -> Version:
    """Version `version` (a number or an alias; default: the default version) of the model's registry entry."""
    from google.api_core.exceptions import NotFound

    from edge.deploy import registry_name
    from edge.evaluation import EvaluationError

    registry = registry_name(project, model)
    client = project.target.model_service_client()
    try:
        found = client.get_model(name=f"{registry}@{version or 'default'}")
    except NotFound:
        known = sorted((m.version_id for m in client.list_model_versions(name=registry)), key=int)
        raise EvaluationError(
            f"{model.name} has no version {version!r} in the registry (versions: {', '.join(known)})"
        ) from None
    return Version(registry, found.version_id, found.artifact_uri, dict(found.labels))


def import_evaluation(project: Project, evaluation: Evaluation, metadata: dict | None = None) -> str:
    """Imports `evaluation` onto its registry version with a slice per class; returns the evaluation's name.
    `metadata` adds keys to the evaluation's metadata (beside the summary, behaviour, thresholds and lineage)."""
    client = project.target.model_service_client()
    imported = client.import_model_evaluation(
        parent=evaluation.version_name,
        model_evaluation={
            "display_name": f"{PRODUCER} {evaluation.model} v{evaluation.version} {evaluation.split}",
            "metrics_schema_uri": SCHEMA_URI,
            "metrics": finite(evaluation.metrics["vertex"]),
            "metadata": evaluation.metadata(**(metadata or {})),
            "slice_dimensions": [SLICE_DIMENSION],
        },
    )
    slices = [
        {
            "slice_": {"dimension": SLICE_DIMENSION, "value": label},
            "metrics_schema_uri": SCHEMA_URI,
            "metrics": finite(metrics),
        }
        for label, metrics in zip(evaluation.metrics["labels"], evaluation.metrics["slices"], strict=True)
    ]
    client.batch_import_model_evaluation_slices(parent=imported.name, model_evaluation_slices=slices)
    return imported.name


def import_with_reference(project: Project, model: ModelConfig, evaluation: Evaluation) -> str:
    """Stores the version's monitoring reference (its features on the held-out instances, with its own
    predictions: edge/monitoring/reference.py), then imports `evaluation` with the reference's URI in its
    metadata (`reference_uri`, where `invoke monitor` finds it); returns the evaluation's name."""
    from edge.monitoring.reference import store_version_reference

    reference = store_version_reference(
        project, model, evaluation.version_name, evaluation.instances, evaluation.probabilities
    )
    return import_evaluation(project, evaluation, metadata={"reference_uri": reference})


def _record(evaluation) -> dict:
    """A ModelEvaluation (proto-plus) as plain JSON values: name, created, metrics, metadata."""
    from google.protobuf import json_format

    pb = type(evaluation).pb(evaluation)
    return {
        "name": pb.name,
        "display_name": pb.display_name,
        "created": pb.create_time.ToJsonString() if pb.HasField("create_time") else None,
        "metrics_schema_uri": pb.metrics_schema_uri,
        "metrics": json_format.MessageToDict(pb.metrics) if pb.HasField("metrics") else {},
        "metadata": json_format.MessageToDict(pb.metadata) if pb.HasField("metadata") else {},
    }


def evaluations_of(project: Project, version_name: str) -> list[dict]:
    """The evaluations edge imported onto `version_name` (projects/.../models/ID@VERSION), newest first."""
    client = project.target.model_service_client()
    records = [_record(e) for e in client.list_model_evaluations(parent=version_name)]
    ours = [r for r in records if r["metadata"].get("producer") == PRODUCER]
    return sorted(ours, key=lambda r: r["created"] or "", reverse=True)


def latest_evaluation(project: Project, version_name: str) -> dict | None:
    """The newest evaluation edge imported onto the version, or None."""
    found = evaluations_of(project, version_name)
    return found[0] if found else None


def slices_of(project: Project, evaluation_name: str) -> list[dict]:
    """The slices of an evaluation: {dimension, value, metrics}."""
    from google.protobuf import json_format

    client = project.target.model_service_client()
    rows = []
    for found in client.list_model_evaluation_slices(parent=evaluation_name):
        metrics = json_format.MessageToDict(type(found).pb(found).metrics)
        rows.append({"dimension": found.slice_.dimension, "value": found.slice_.value, "metrics": metrics})
    return rows


def evaluation_for(project: Project, model: ModelConfig, version: str | None, evaluate_missing: bool = True) -> dict:
    """The newest evaluation of `version` (default: the default version) as edge shows it (edge.evaluation.show),
    with "evaluated_now": a version without one (trained before evaluations, or uploaded by hand) is evaluated
    first, on the held-out split, by the evaluate stage's code, and the evaluation imported."""
    from edge.evaluation import EvaluationError
    from edge.evaluation.evaluate import evaluate_version
    from edge.evaluation.show import view

    found = registry_version(project, model, version)
    record, evaluated_now = latest_evaluation(project, found.name), False
    if record is None and evaluate_missing:
        import_with_reference(project, model, evaluate_version(project, model, found.version, pull=True))
        record, evaluated_now = latest_evaluation(project, found.name), True
    if record is None:
        raise EvaluationError(f"{model.name} version {found.version} has no evaluation")
    return {**view(record), "version": found.version, "evaluated_now": evaluated_now}
