"""TrainingPipelines on the twin, driven by the SDK's CustomTrainingJob, CustomPythonPackageTrainingJob and
CustomContainerTrainingJob: they run as CustomJobs and register the model they train."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from google.api_core import exceptions

from edge.target import twin_target
from edge.twin.server import Twin
from tests.support import SERVING_IMAGE, TRAINING_IMAGE, upload_line_model

pytestmark = pytest.mark.timeout(300)

TASK = Path(__file__).with_name("copy_model_task.py")
DONE = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


def wait_for_state(job, states, timeout=120.0) -> str:
    """Polls a training job every 0.2 s (the SDK's `run()` sleeps 5 s between polls) until it is in `states`."""
    deadline = time.monotonic() + timeout
    while (state := job.state) is None or state.name not in states:
        assert time.monotonic() < deadline, f"pipeline stayed {state}, expected {states}"
        time.sleep(0.2)
    return state.name


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def script_job(vertex, name="copy"):
    """A CustomTrainingJob of tests/twin/copy_model_task.py that uploads a TensorFlow model."""
    return vertex.CustomTrainingJob(
        display_name=unique(name),
        script_path=str(TASK),
        container_uri=TRAINING_IMAGE,
        model_serving_container_image_uri=SERVING_IMAGE,
        labels={"suite": "pipelines"},
    )


def package_job(vertex, package_uri, name="copy-package"):
    """A CustomPythonPackageTrainingJob of the staged copy_model_task package."""
    return vertex.CustomPythonPackageTrainingJob(
        display_name=unique(name),
        python_package_gcs_uri=package_uri,
        python_module_name="copy_trainer.task",
        container_uri=TRAINING_IMAGE,
        model_serving_container_image_uri=SERVING_IMAGE,
    )


@pytest.fixture(scope="module")
def package_uri(tmp_path_factory, bucket):
    """gs:// URI of a source distribution of copy_model_task.py (module `copy_trainer.task`), as the SDK builds one."""
    root = tmp_path_factory.mktemp("package")
    (root / "copy_trainer").mkdir()
    (root / "copy_trainer" / "__init__.py").write_text("")
    (root / "copy_trainer" / "task.py").write_text(TASK.read_text())
    (root / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='copy_trainer', version='0.1', packages=['copy_trainer'])\n"
    )
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--formats=gztar"], cwd=root, check=True)
    name = f"packages/{uuid.uuid4().hex[:8]}/copy_trainer-0.1.tar.gz"
    bucket.blob(name).upload_from_filename(str(root / "dist" / "copy_trainer-0.1.tar.gz"))
    return f"gs://{bucket.name}/{name}"


@pytest.fixture
def parent(vertex, line_model_uri):
    """A new registered model (version 1) to train versions of."""
    return upload_line_model(vertex, line_model_uri)


@pytest.fixture(scope="module")
def succeeded(session_vertex, target, bucket, line_model_uri):
    """A CustomTrainingJob run to success as a version of a parent model: (job, model, parent, base output dir)."""
    target.init_vertex(staging_bucket=f"gs://{bucket.name}/staging")
    vertex = session_vertex
    parent = upload_line_model(vertex, line_model_uri)
    base = f"gs://{bucket.name}/pipelines/{uuid.uuid4().hex[:8]}"
    job = script_job(vertex)
    job.submit(
        args=["--model-from", line_model_uri],
        base_output_dir=base,
        parent_model=parent.resource_name,
        model_version_aliases=["candidate"],
        is_default_version=False,
        model_labels={"data": "v7"},
    )
    assert wait_for_state(job, DONE) == "PIPELINE_STATE_SUCCEEDED", job.gca_resource.error
    return job, job.get_model(), parent, base


# --- success


def test_custom_training_job_registers_a_new_version_of_its_parent_model(vertex, succeeded):
    job, model, parent, base = succeeded
    assert model.resource_name == parent.resource_name
    assert model.version_id == "2"
    assert model.version_aliases == ["candidate"]
    assert model.labels == {"data": "v7"}
    assert model.uri == f"{base}/model"
    assert model.gca_resource.training_pipeline == job.resource_name
    assert vertex.Model(parent.resource_name).version_id == "1"  # is_default_version=False left the default alone


def test_a_pipeline_runs_as_a_listed_custom_job_with_its_log(vertex, twin, succeeded):
    job = succeeded[0]
    backing = job.gca_resource.training_task_metadata["backingCustomJob"]
    custom_job = vertex.CustomJob.get(backing)
    assert custom_job.display_name == f"{job.display_name}-custom-job"
    assert custom_job.state.name == "JOB_STATE_SUCCEEDED"
    assert custom_job.job_spec.base_output_directory.output_uri_prefix == succeeded[3]
    listed = vertex.CustomJob.list(filter=f'display_name="{job.display_name}-custom-job"')
    assert [j.resource_name for j in listed] == [backing]
    assert "copied the model to" in twin.backend.jobs.log_path(backing).read_text()


def test_a_succeeded_pipeline_has_its_state_and_times(succeeded):
    pipeline = succeeded[0].gca_resource
    assert pipeline.state.name == "PIPELINE_STATE_SUCCEEDED"
    assert pipeline.create_time <= pipeline.start_time <= pipeline.end_time <= pipeline.update_time
    assert not pipeline.error.message


def test_python_package_training_job_run_returns_a_new_default_version_of_its_parent(vertex, parent, package_uri):
    job = package_job(vertex, package_uri)
    model = job.run(  # as a user would: the SDK polls every 5 s
        args=["--model-from", parent.uri],
        parent_model=parent.resource_name,
        model_version_aliases=["pkg"],
    )
    assert (model.resource_name, model.version_id) == (parent.resource_name, "2")
    assert sorted(model.version_aliases) == ["default", "pkg"]
    assert vertex.Model(parent.resource_name).version_id == "2"
    assert job.state.name == "PIPELINE_STATE_SUCCEEDED"


def test_model_id_names_the_model_a_pipeline_registers(vertex, line_model_uri):
    model_id = unique("line")
    job = script_job(vertex)
    job.submit(args=["--model-from", line_model_uri], model_id=model_id, model_display_name="line-by-id")
    assert wait_for_state(job, DONE) == "PIPELINE_STATE_SUCCEEDED", job.gca_resource.error
    model = job.get_model()
    assert model.name == model_id
    assert (model.display_name, model.version_id, model.version_aliases) == ("line-by-id", "1", ["default"])


# --- failure


def test_a_failing_script_fails_the_pipeline_with_its_last_log_lines_and_run_raises(vertex, parent):
    job = script_job(vertex, "failing")
    with pytest.raises(RuntimeError, match="Training failed"):
        job.run(args=["--fail"], parent_model=parent.resource_name)
    assert job.state.name == "PIPELINE_STATE_FAILED"
    assert "non-zero status of 3" in job.gca_resource.error.message
    assert "asked to fail" in job.gca_resource.error.message
    backing = job.gca_resource.training_task_metadata["backingCustomJob"]
    assert vertex.CustomJob.get(backing).state.name == "JOB_STATE_FAILED"
    assert [v.version_id for v in vertex.models.ModelRegistry(parent).list_versions()] == ["1"]


def test_a_failing_python_package_fails_its_pipeline_and_run_raises(vertex, package_uri):
    job = package_job(vertex, package_uri, "failing-package")
    with pytest.raises(RuntimeError, match="asked to fail"):
        job.run(args=["--fail"])
    assert job.state.name == "PIPELINE_STATE_FAILED"


def test_a_container_training_job_fails_at_once_saying_why(vertex):
    job = vertex.CustomContainerTrainingJob(
        display_name=unique("container"),
        container_uri="europe-docker.pkg.dev/p/r/trainer:1",
        model_serving_container_image_uri=SERVING_IMAGE,
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="no container engine"):
        job.run()
    assert time.monotonic() - started < 5  # no poll of the SDK's was needed
    assert job.state.name == "PIPELINE_STATE_FAILED"
    assert not job.gca_resource.training_task_metadata  # no CustomJob was started


def test_an_unknown_parent_model_is_refused_when_the_pipeline_is_created(vertex, line_model_uri):
    job = script_job(vertex)
    with pytest.raises(exceptions.NotFound):
        job.run(args=["--model-from", line_model_uri], parent_model="999999")


def test_a_model_directory_without_a_saved_model_fails_the_pipeline(vertex, bucket):
    empty = f"gs://{bucket.name}/nothing/{uuid.uuid4().hex[:8]}"
    bucket.blob(empty.split("/", 3)[3] + "/README").upload_from_string("no model here")
    job = script_job(vertex, "no-model")
    job.submit(args=["--model-from", empty])
    assert wait_for_state(job, DONE) == "PIPELINE_STATE_FAILED"
    assert "saved_model.pb" in job.gca_resource.error.message


# --- cancel and delete


def test_cancel_ends_the_custom_job_process_and_the_pipeline_is_cancelled(vertex, twin):
    job = script_job(vertex, "sleepy")
    job.submit(args=["--sleep", "120"])
    wait_for_state(job, {"PIPELINE_STATE_RUNNING"} | DONE)
    backing = job.gca_resource.training_task_metadata["backingCustomJob"]
    (process,) = twin.backend.jobs.processes[backing]
    job.cancel()
    assert wait_for_state(job, DONE) == "PIPELINE_STATE_CANCELLED"
    assert job.gca_resource.error.code == 1
    assert vertex.CustomJob.get(backing).state.name == "JOB_STATE_CANCELLED"
    assert process.poll() is not None


def test_cancelling_a_python_package_pipeline_makes_run_raise(vertex, package_uri):
    job = package_job(vertex, package_uri, "sleepy-package")
    job.run(args=["--sleep", "120"], sync=False)
    wait_for_state(job, {"PIPELINE_STATE_RUNNING"} | DONE)
    job.cancel()
    assert wait_for_state(job, DONE) == "PIPELINE_STATE_CANCELLED"
    with pytest.raises(RuntimeError, match="cancelled"):
        job.wait()


def test_a_running_pipeline_is_not_deleted(vertex):
    job = script_job(vertex, "busy")
    job.submit(args=["--sleep", "120"])
    with pytest.raises(exceptions.BadRequest, match="cancel it before deleting it"):
        job.delete()
    job.cancel()
    assert wait_for_state(job, DONE) == "PIPELINE_STATE_CANCELLED"


def test_a_finished_pipeline_is_deleted(vertex):
    job = vertex.CustomContainerTrainingJob(display_name=unique("doomed"), container_uri="example.com/trainer:1")
    with pytest.raises(RuntimeError):
        job.run()
    name = job.resource_name
    job.delete()
    with pytest.raises(exceptions.NotFound):
        vertex.CustomTrainingJob.get(name)


# --- list


def test_pipelines_are_listed_with_a_filter(vertex):
    suite = uuid.uuid4().hex[:8]
    for name in ("first", "second"):
        job = vertex.CustomContainerTrainingJob(
            display_name=f"{name}-{suite}", container_uri="example.com/trainer:1", labels={"suite": suite}
        )
        with pytest.raises(RuntimeError):
            job.run()  # fails at once: a cheap pipeline to list
    listed = vertex.CustomTrainingJob.list(filter=f'labels.suite="{suite}"')
    assert sorted(j.display_name for j in listed) == [f"first-{suite}", f"second-{suite}"]
    one = vertex.CustomTrainingJob.list(filter=f'labels.suite="{suite}" AND display_name="second-{suite}"')
    assert [j.display_name for j in one] == [f"second-{suite}"]
    assert vertex.CustomTrainingJob.list(filter=f'labels.suite="{suite}" AND state="PIPELINE_STATE_SUCCEEDED"') == []


# --- deploying what a pipeline trained


def test_model_deploy_without_an_endpoint_creates_one_and_undeploy_all_empties_it(vertex, parent):
    endpoint = parent.deploy(machine_type="n1-standard-2")
    assert endpoint.display_name == "line_endpoint"
    assert endpoint.predict(instances=[[1.0]]).predictions
    endpoint.undeploy_all()
    assert endpoint.list_models() == []
    endpoint.delete()


# --- a twin restart


@pytest.fixture
def sdk_elsewhere(monkeypatch, target, bucket):
    """Lets a test point the SDK and the storage client at another twin; the session's twin is theirs again after."""
    for key in target.env:
        monkeypatch.setenv(key, target.env[key])  # so that monkeypatch restores them
    yield
    monkeypatch.undo()
    target.init_vertex(staging_bucket=f"gs://{bucket.name}/staging")


def test_a_twin_restart_fails_the_pipeline_that_was_running(tmp_path, sdk_elsewhere):
    from google.cloud import aiplatform

    with Twin(tmp_path) as first:
        other = twin_target(first.env)
        other.storage_client().create_bucket("restart")
        other.init_vertex(staging_bucket="gs://restart/staging")
        job = aiplatform.CustomTrainingJob(
            display_name="interrupted", script_path=str(TASK), container_uri=TRAINING_IMAGE
        )
        job.submit(args=["--sleep", "120"])
        wait_for_state(job, {"PIPELINE_STATE_RUNNING"})
        (process,) = first.backend.jobs.processes[job.gca_resource.training_task_metadata["backingCustomJob"]]
    with Twin(tmp_path) as again:
        pipeline = again.backend.pipelines.get(job.resource_name)
    assert pipeline["state"] == "PIPELINE_STATE_FAILED"
    assert "twin stopped" in pipeline["error"]["message"]
    assert process.poll() is not None
