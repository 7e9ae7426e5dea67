"""Model evaluations and their slices on the twin, through the real SDK: the GAPIC ModelServiceClient imports them
(the SDK has no high-level import), `Model.get_model_evaluation()` / `list_model_evaluations()` and
`ModelEvaluation.metrics` read them back."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from tests.support import upload_line_model

pytestmark = pytest.mark.timeout(120)
SCHEMA = "gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml"
METRICS = {
    "auPrc": 0.91,
    "auRoc": 0.97,
    "logLoss": 0.31,
    "confidenceMetrics": [{"confidenceThreshold": 0.5, "precision": 0.9, "recall": 0.8}],
    "confusionMatrix": {
        "annotationSpecs": [{"id": "0", "displayName": "cat"}, {"id": "1", "displayName": "dog"}],
        "rows": [[40, 10], [5, 45]],
    },
}


@pytest.fixture(scope="module")
def client(target):
    """The GAPIC ModelServiceClient pointed at the twin the way edge points it (edge.target)."""
    return target.model_service_client()


@pytest.fixture(scope="module")
def versions(session_vertex, bucket):
    """A registry entry with versions 1 (default) and 2; no artifact is needed to evaluate in the registry."""
    uri = f"gs://{bucket.name}/evaluations-test/model"
    first = upload_line_model(session_vertex, uri)
    second = upload_line_model(session_vertex, uri, parent_model=first.resource_name, is_default_version=False)
    return first, second


def import_one(client, parent: str, display_name: str, **metadata) -> object:
    return client.import_model_evaluation(
        parent=parent,
        model_evaluation={
            "display_name": display_name,
            "metrics_schema_uri": SCHEMA,
            "metrics": METRICS,
            "metadata": {"producer": "test", **metadata},
            "slice_dimensions": ["annotationSpec"],
        },
    )


@pytest.fixture(scope="module")
def evaluated(client, versions):
    """Version 2 has one evaluation with a slice per class; version 1 has none."""
    _, second = versions
    evaluation = import_one(client, f"{second.resource_name}@2", "v2 test", version="2")
    slices = [
        {"slice_": {"dimension": "annotationSpec", "value": label}, "metrics_schema_uri": SCHEMA, "metrics": metrics}
        for label, metrics in (("cat", {"auPrc": 0.9}), ("dog", {"auPrc": 0.93}))
    ]
    imported = client.batch_import_model_evaluation_slices(parent=evaluation.name, model_evaluation_slices=slices)
    return evaluation, list(imported.imported_model_evaluation_slices)


def test_an_imported_evaluation_reads_back_through_the_sdk(vertex, versions, evaluated):
    evaluation, _ = evaluated
    model = vertex.Model(f"{versions[0].resource_name}@2")
    found = model.get_model_evaluation()
    assert found.resource_name == evaluation.name
    assert found.metrics["auPrc"] == pytest.approx(0.91)
    assert list(found.metrics["confusionMatrix"]["rows"][1]) == [5, 45]
    assert found.gca_resource.metrics_schema_uri == SCHEMA
    assert found.gca_resource.metadata["version"] == "2"
    assert found.gca_resource.create_time is not None


def test_evaluations_are_listed_per_version(vertex, versions, evaluated):
    name = versions[0].resource_name
    assert [e.resource_name for e in vertex.Model(f"{name}@2").list_model_evaluations()] == [evaluated[0].name]
    assert vertex.Model(f"{name}@1").list_model_evaluations() == []
    assert vertex.Model(name).list_model_evaluations() == []  # the default version is 1


def test_an_evaluation_is_found_by_id_and_by_versioned_name(vertex, client, versions, evaluated):
    evaluation, _ = evaluated
    evaluation_id = evaluation.name.rsplit("/", 1)[-1]
    assert vertex.Model(versions[0].resource_name).get_model_evaluation(evaluation_id).metrics["logLoss"] == 0.31
    versioned = evaluation.name.replace("/evaluations/", "@2/evaluations/")
    assert client.get_model_evaluation(name=versioned).name == evaluation.name
    with pytest.raises(exceptions.NotFound):
        client.get_model_evaluation(name=evaluation.name.replace("/evaluations/", "@1/evaluations/"))


def test_slices_are_listed_filtered_and_fetched(client, evaluated):
    evaluation, names = evaluated
    listed = list(client.list_model_evaluation_slices(parent=evaluation.name))
    assert [(s.slice_.dimension, s.slice_.value) for s in listed] == [
        ("annotationSpec", "cat"),
        ("annotationSpec", "dog"),
    ]
    assert [s.name for s in listed] == names
    assert client.get_model_evaluation_slice(name=names[1]).metrics["auPrc"] == pytest.approx(0.93)

    def listed_with(expression: str) -> list:
        return list(client.list_model_evaluation_slices(request={"parent": evaluation.name, "filter": expression}))

    assert len(listed_with('slice.dimension="annotationSpec"')) == 2
    assert listed_with('slice.dimension="color"') == []


def test_lists_are_paginated(vertex, client, bucket):
    model = upload_line_model(vertex, f"gs://{bucket.name}/evaluations-test/paged")
    names = [import_one(client, f"{model.resource_name}@1", f"run {i}").name for i in range(5)]
    pager = client.list_model_evaluations(request={"parent": model.resource_name, "page_size": 2})
    pages = list(pager.pages)
    assert [len(p.model_evaluations) for p in pages] == [2, 2, 1]
    assert [e.name for p in pages for e in p.model_evaluations] == names
    assert len(vertex.Model(model.resource_name).list_model_evaluations()) == 5


def test_an_unknown_version_or_evaluation_is_not_found(client, versions):
    name = versions[0].resource_name
    with pytest.raises(exceptions.NotFound):
        import_one(client, f"{name}@9", "nope")
    with pytest.raises(exceptions.NotFound):
        client.get_model_evaluation(name=f"{name}/evaluations/123")


def test_deleting_a_version_or_the_model_deletes_their_evaluations(vertex, client, bucket):
    uri = f"gs://{bucket.name}/evaluations-test/deleted"
    first = upload_line_model(vertex, uri)
    upload_line_model(vertex, uri, parent_model=first.resource_name, is_default_version=False)
    kept = import_one(client, f"{first.resource_name}@1", "kept")
    gone = import_one(client, f"{first.resource_name}@2", "gone")
    vertex.models.ModelRegistry(first.resource_name).delete_version("2")
    with pytest.raises(exceptions.NotFound):
        client.get_model_evaluation(name=gone.name)
    assert client.get_model_evaluation(name=kept.name).name == kept.name
    vertex.Model(first.resource_name).delete()
    with pytest.raises(exceptions.NotFound):
        client.get_model_evaluation(name=kept.name)
