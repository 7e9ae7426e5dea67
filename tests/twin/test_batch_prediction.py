"""BatchPredictionJobs on the twin, driven by google-cloud-aiplatform: JSON Lines in and out of the bucket, results
and errors files as Vertex writes them, read back with `iter_outputs()`, completionStats, cancel, bad input."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.support import upload_line_model

pytestmark = pytest.mark.timeout(300)

DONE = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}
BAD_LINES = ["not json at all", "[1.0, 2.0]", '{"a": 1}']


@pytest.fixture(scope="module")
def line_model(session_vertex, line_model_uri):
    """The line model (y = 2x + 1) in the registry."""
    return upload_line_model(session_vertex, line_model_uri)


def put_lines(bucket, lines: list[str], name: str | None = None) -> str:
    path = name or f"batch-in/{uuid.uuid4().hex[:8]}/instances.jsonl"
    bucket.blob(path).upload_from_string("\n".join(lines) + "\n")
    return f"gs://{bucket.name}/{path}"


def submit(vertex, model, source: str, bucket) -> object:
    return vertex.BatchPredictionJob.submit(
        job_display_name="line-batch",
        model_name=model,
        gcs_source=source,
        gcs_destination_prefix=f"gs://{bucket.name}/batch-out/{uuid.uuid4().hex[:8]}",
    )


def wait_for(job, states, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while (state := job.state.name) not in states:
        assert time.monotonic() < deadline, f"batch job stayed {state}"
        time.sleep(0.2)
    return state


def read_lines(blob) -> list[dict]:
    return [json.loads(line) for line in blob.download_as_text().splitlines() if line]


def test_model_batch_predict_writes_results_and_errors_files_that_iter_outputs_reads(vertex, line_model, bucket):
    lines = [json.dumps([float(x)]) for x in range(200)]
    source = put_lines(bucket, [*lines[:100], BAD_LINES[0], "", *lines[100:], *BAD_LINES[1:]])
    prefix = f"gs://{bucket.name}/batch-out/{uuid.uuid4().hex[:8]}"
    job = line_model.batch_predict(job_display_name="line-batch", gcs_source=source, gcs_destination_prefix=prefix)
    assert job.state.name == "JOB_STATE_SUCCEEDED", job.error
    stats = job.completion_stats
    assert (stats.successful_count, stats.failed_count, stats.incomplete_count) == (200, 3, 0)
    directory = job.output_info.gcs_output_directory
    assert directory.startswith(f"{prefix}/prediction-line-")
    blobs = {blob.name.rsplit("/", 1)[-1]: blob for blob in job.iter_outputs()}
    assert set(blobs) == {"prediction.results-00000-of-00001", "prediction.errors_stats-00000-of-00001"}
    results = read_lines(blobs["prediction.results-00000-of-00001"])
    assert [r["instance"] for r in results] == [[float(x)] for x in range(200)]  # in the input's order
    assert all(r["prediction"][0] == pytest.approx(2 * r["instance"][0] + 1, abs=0.05) for r in results)
    errors = read_lines(blobs["prediction.errors_stats-00000-of-00001"])
    assert [e["instance"] for e in errors] == ["not json at all", [1.0, 2.0], {"a": 1}]
    assert all(e["error"]["code"] == 3 for e in errors)
    assert "not valid JSON" in errors[0]["error"]["message"]
    assert "expected shape" in errors[1]["error"]["message"]
    assert job.gca_resource.model_version_id == line_model.version_id


def test_a_wildcard_source_gives_one_results_file_per_input_file(vertex, line_model, bucket):
    folder = f"batch-in/{uuid.uuid4().hex[:8]}"
    for part in range(2):
        put_lines(bucket, [json.dumps([float(part * 10 + x)]) for x in range(10)], f"{folder}/part-{part}.jsonl")
    job = submit(vertex, line_model, f"gs://{bucket.name}/{folder}/*.jsonl", bucket)
    assert wait_for(job, DONE) == "JOB_STATE_SUCCEEDED", job.error
    names = sorted(blob.name.rsplit("/", 1)[-1] for blob in job.iter_outputs())
    assert names == ["prediction.results-00000-of-00002", "prediction.results-00001-of-00002"]
    assert job.completion_stats.successful_count == 20 and job.completion_stats.failed_count == 0


def test_cancel_ends_the_worker_and_the_job_is_cancelled(vertex, line_model, bucket, twin):
    job = submit(vertex, line_model, put_lines(bucket, ["[1.0]"] * 10), bucket)
    wait_for(job, {"JOB_STATE_RUNNING"} | DONE)
    process = twin.backend.batch.processes.get(job.resource_name)
    job.cancel()
    assert wait_for(job, DONE) == "JOB_STATE_CANCELLED"
    assert job.error.code == 1
    assert process is None or process.poll() is not None


def test_a_missing_input_fails_the_job_with_one_line(vertex, line_model, bucket):
    job = submit(vertex, line_model, f"gs://{bucket.name}/batch-in/nothing-here.jsonl", bucket)
    assert wait_for(job, DONE) == "JOB_STATE_FAILED"
    assert job.error.message == f"No input file at gs://{bucket.name}/batch-in/nothing-here.jsonl."


def test_a_job_whose_every_line_is_bad_fails_and_still_writes_the_errors(vertex, line_model, bucket):
    job = submit(vertex, line_model, put_lines(bucket, BAD_LINES), bucket)
    assert wait_for(job, DONE) == "JOB_STATE_FAILED"
    assert "All 3 instances failed" in job.error.message
    assert job.completion_stats.failed_count == 3


def test_what_the_twin_does_not_emulate_is_refused_in_one_line(vertex, line_model, bucket):
    from google.api_core.exceptions import GoogleAPICallError

    with pytest.raises(GoogleAPICallError, match="JSON Lines"):
        vertex.BatchPredictionJob.submit(
            job_display_name="csv",
            model_name=line_model,
            gcs_source=f"gs://{bucket.name}/x.csv",
            instances_format="csv",
            gcs_destination_prefix=f"gs://{bucket.name}/out",
        )
