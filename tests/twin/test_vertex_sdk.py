"""The Vertex AI lifecycle through the real google-cloud-aiplatform SDK against the twin."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from tests.support import upload_line_model

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def line_versions(session_vertex, line_model_uri):
    """Two versions of one registry entry: 1 (default) and 2 (alias `candidate`)."""
    vertex = session_vertex
    first = upload_line_model(vertex, line_model_uri, labels={"git_commit": "abc123", "data": "v1"})
    second = upload_line_model(
        vertex,
        line_model_uri,
        parent_model=first.resource_name,
        version_aliases=["candidate"],
        is_default_version=False,
        labels={"git_commit": "def456", "data": "v2"},
    )
    return first, second


@pytest.fixture(scope="module")
def endpoint(session_vertex, line_versions):
    vertex = session_vertex
    endpoint = vertex.Endpoint.create(display_name="line")
    endpoint.deploy(line_versions[0], machine_type="n1-standard-2")
    yield endpoint
    endpoint.undeploy_all()
    endpoint.delete()


def test_custom_job_writes_a_saved_model_to_aip_model_dir(line_model_uri, bucket):
    prefix = line_model_uri.removeprefix(f"gs://{bucket.name}/")
    names = [blob.name for blob in bucket.list_blobs(prefix=prefix)]
    assert f"{prefix}/saved_model.pb" in names
    assert any("variables/" in name for name in names)


def test_custom_job_is_listed_and_filtered_by_display_name(vertex, line_model_uri):
    jobs = vertex.CustomJob.list(filter='display_name="train-line"')
    assert jobs and all(job.display_name == "train-line" for job in jobs)
    assert jobs[0].state.name == "JOB_STATE_SUCCEEDED"
    assert vertex.CustomJob.list(filter='display_name="no-such-job"') == []


def test_upload_with_parent_model_creates_a_new_version(vertex, line_versions):
    first, second = line_versions
    assert second.resource_name == first.resource_name
    assert (first.version_id, second.version_id) == ("1", "2")
    versions = vertex.models.ModelRegistry(first.resource_name).list_versions()
    assert [v.version_id for v in versions] == ["1", "2"]


def test_model_is_found_by_version_by_alias_and_by_default(vertex, line_versions):
    name = line_versions[0].resource_name
    assert vertex.Model(name).version_id == "1"
    assert vertex.Model(f"{name}@2").labels == {"git_commit": "def456", "data": "v2"}
    assert vertex.Model(f"{name}@candidate").version_id == "2"
    assert "default" in vertex.Model(name).version_aliases


def test_unknown_version_or_alias_is_not_found(vertex, line_versions):
    with pytest.raises(exceptions.NotFound, match="no version or alias"):
        vertex.Model(f"{line_versions[0].resource_name}@nope")


def test_models_are_listed_by_label(vertex, line_versions):
    found = vertex.Model.list(filter='labels.git_commit="abc123"')
    assert [m.resource_name for m in found] == [line_versions[0].resource_name]


def test_deployed_model_predicts_its_real_outputs(endpoint, line_versions):
    prediction = endpoint.predict(instances=[[1.0], [2.0], [-1.0]])
    assert [round(p[0], 1) for p in prediction.predictions] == [3.0, 5.0, -1.0]
    assert prediction.model_version_id == "1"
    assert prediction.model_resource_name == line_versions[0].resource_name
    assert prediction.deployed_model_id == endpoint.list_models()[0].id


def test_model_delete_is_refused_while_deployed(line_versions, endpoint):
    with pytest.raises(exceptions.BadRequest, match="is deployed"):
        line_versions[0].delete()


def test_endpoint_delete_is_refused_while_models_are_deployed(endpoint):
    with pytest.raises(exceptions.BadRequest, match="has deployed models"):
        endpoint.delete()


def test_traffic_split_50_50_serves_both_versions(vertex, endpoint, line_versions):
    endpoint.deploy(
        vertex.Model(f"{line_versions[0].resource_name}@2"), machine_type="n1-standard-2", traffic_percentage=50
    )
    endpoint._sync_gca_resource()
    assert sorted(endpoint.traffic_split.values()) == [50, 50]
    served = {endpoint.predict(instances=[[1.0]]).model_version_id for _ in range(40)}
    assert served == {"1", "2"}


def test_undeploy_moves_traffic_to_the_remaining_model(endpoint):
    deployed = {m.model_version_id: m.id for m in endpoint.list_models()}
    endpoint.undeploy(deployed["2"], traffic_split={deployed["1"]: 100})
    assert endpoint.traffic_split == {deployed["1"]: 100}
    assert {endpoint.predict(instances=[[1.0]]).model_version_id for _ in range(10)} == {"1"}


def test_a_traffic_split_that_does_not_add_up_is_refused(endpoint):
    with pytest.raises(exceptions.BadRequest, match="add up to 100"):
        endpoint.update(traffic_split={endpoint.list_models()[0].id: 60})


def test_undeployed_models_and_empty_endpoints_can_be_deleted(vertex, line_model_uri):
    model = upload_line_model(vertex, line_model_uri)
    endpoint = vertex.Endpoint.create(display_name="short-lived")
    endpoint.deploy(model, machine_type="n1-standard-2")
    names = endpoint.resource_name, model.resource_name
    endpoint.undeploy_all()
    endpoint.delete()
    model.delete()
    assert vertex.Endpoint.list(filter='display_name="short-lived"') == []
    with pytest.raises(exceptions.NotFound):
        vertex.Endpoint(names[0]).list_models()  # the constructor is lazy; this GETs it
    with pytest.raises(exceptions.NotFound):
        vertex.Model(names[1])
