"""TrainingPipelines of the custom training task (what `CustomTrainingJob.run()` and its siblings create).

A pipeline runs its `trainingTaskInputs` (a CustomJobSpec, keys in snake_case as the SDK sends them) as a
CustomJob of the twin, named `<display name>-custom-job` as Vertex names it, and follows that job's states.
When the job succeeds it registers `modelToUpload` from `<base_output_directory>/model` (AIP_MODEL_DIR):
a new model (`modelId`), or a new version of `parentModel`, with the version aliases and labels asked for.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from functools import partial

from edge.twin.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    TwinError,
    Unimplemented,
    rpc_status,
)
from edge.twin.vertex import filters
from edge.twin.vertex.jobs import CustomJobs, refusal
from edge.twin.vertex.models import ModelRegistry
from edge.twin.vertex.store import Operations, Store, now

log = logging.getLogger(__name__)

CUSTOM_TASK = "gs://google-cloud-aiplatform/schema/trainingjob/definition/custom_task_1.0.0.yaml"
ACTIVE = ("PIPELINE_STATE_QUEUED", "PIPELINE_STATE_PENDING", "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_CANCELLING")
# Vertex's prebuilt TensorFlow serving images need a SavedModel at the top of the model directory.
_TF_SERVING = "-docker.pkg.dev/vertex-ai/prediction/tf"
_SAVED_MODEL = ("saved_model.pb", "saved_model.pbtxt")
_CANCELLABLE_JOB = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING")


def _camel_keys(value):
    """A CustomJobSpec as JSON with camelCase field names (the SDK sends snake_case); nulls dropped."""
    if isinstance(value, dict):
        return {filters._camel(k): _camel_keys(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


class TrainingPipelines:
    """Pipelines keyed by name in the store; each backed by one CustomJob of `jobs`."""

    def __init__(
        self,
        store: Store,
        operations: Operations,
        jobs: CustomJobs,
        models: ModelRegistry,
        list_objects: Callable[[str], list[str]],
    ):
        self.store = store
        self.operations = operations
        self.jobs = jobs
        self.models = models
        self.list_objects = list_objects

    def get(self, name: str) -> dict:
        return self.store.get("trainingPipelines", name, "TrainingPipeline")

    def list(self, parent: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        return [p for p in self.store.list("trainingPipelines", parent) if filters.matches(p, terms)]

    def create(self, parent: str, body: dict) -> dict:
        """Stores the pipeline PENDING and queues its CustomJob; a job the twin cannot run fails it at once."""
        spec = self._check(parent, body)
        with self.store.lock:
            name = f"{parent}/trainingPipelines/{self.store.new_id()}"
            stamp = now()
            pipeline = {
                **body,
                "name": name,
                "state": "PIPELINE_STATE_PENDING",
                "createTime": stamp,
                "updateTime": stamp,
                "labels": body.get("labels", {}),
            }
            self.store.collection("trainingPipelines")[name] = pipeline
            reason = refusal(spec["workerPoolSpecs"])
            if reason is not None:
                self._end(pipeline, "PIPELINE_STATE_FAILED", {"code": 3, "message": reason})
                return pipeline
            job = self.jobs.create(
                parent,
                {"displayName": f"{body['displayName']}-custom-job", "jobSpec": spec, "labels": pipeline["labels"]},
                watcher=partial(self._follow, name),
            )
            pipeline["trainingTaskMetadata"] = {"backingCustomJob": job["name"]}
            self.store.save()
            return pipeline

    def _check(self, parent: str, body: dict) -> dict:
        """The CustomJobSpec of a valid request (InvalidArgument, NotFound... otherwise)."""
        if not body.get("displayName"):
            raise InvalidArgument("training_pipeline.display_name is required.")
        definition = body.get("trainingTaskDefinition")
        if definition != CUSTOM_TASK:
            raise Unimplemented(
                f"The twin runs custom training pipelines only (training_task_definition {CUSTOM_TASK}), "
                f"not {definition!r}: AutoML is not emulated."
            )
        if (body.get("inputDataConfig") or {}).get("datasetId"):
            raise Unimplemented("The twin has no managed datasets: read your data from gs:// in the training script.")
        inputs = body.get("trainingTaskInputs")
        spec = _camel_keys(inputs) if isinstance(inputs, dict) else {}
        if not [p for p in spec.get("workerPoolSpecs") or [] if p]:
            raise InvalidArgument("training_task_inputs.worker_pool_specs must have at least one pool.")
        model = body.get("modelToUpload")
        if model is not None:
            if not model.get("displayName"):
                raise InvalidArgument("training_pipeline.model_to_upload.display_name is required.")
            if not (spec.get("baseOutputDirectory") or {}).get("outputUriPrefix"):
                raise InvalidArgument(
                    "training_task_inputs.base_output_directory is required to upload a model (AIP_MODEL_DIR)."
                )
        if body.get("parentModel"):
            self.models.resolve(body["parentModel"].partition("@")[0])  # NotFound if it does not exist
        elif body.get("modelId") and f"{parent}/models/{body['modelId']}" in self.store.collection("models"):
            raise AlreadyExists(f"Model {parent}/models/{body['modelId']} already exists; train a version of it.")
        return spec

    def cancel(self, name: str) -> dict:
        with self.store.lock:
            pipeline = self.get(name)
            if pipeline["state"] not in ACTIVE:
                raise FailedPrecondition(f"TrainingPipeline {name} is already {pipeline['state']}; nothing to cancel.")
            if pipeline["state"] == "PIPELINE_STATE_CANCELLING":
                return {}
            self._set(pipeline, "PIPELINE_STATE_CANCELLING")
            job_name = pipeline.get("trainingTaskMetadata", {}).get("backingCustomJob")
            if job_name and self.jobs.get(job_name)["state"] in _CANCELLABLE_JOB:
                self.jobs.cancel(job_name)
        return {}

    def delete(self, name: str) -> dict:
        """Deletes the pipeline (not its CustomJob nor its model, as on Vertex)."""
        with self.store.lock:
            pipeline = self.get(name)
            if pipeline["state"] in ACTIVE:
                raise FailedPrecondition(
                    f"TrainingPipeline {name} is {pipeline['state']}; cancel it before deleting it."
                )
            del self.store.collection("trainingPipelines")[name]
            self.store.save()
        return self.operations.completed(name, "DeleteOperationMetadata", "Empty")

    def recover(self) -> None:
        """Pipelines that were active when the twin stopped did not finish: they are FAILED (their jobs are too)."""
        with self.store.lock:
            for pipeline in self.store.collection("trainingPipelines").values():
                if pipeline["state"] in ACTIVE:
                    message = "The twin stopped while this pipeline was active; run it again."
                    self._end(pipeline, "PIPELINE_STATE_FAILED", {"code": 13, "message": message})

    # following the backing job
    def _set(self, pipeline: dict, state: str) -> None:
        with self.store.lock:
            pipeline["state"] = state
            pipeline["updateTime"] = now()
            if state == "PIPELINE_STATE_RUNNING" and "startTime" not in pipeline:
                pipeline["startTime"] = pipeline["updateTime"]
            self.store.save()

    def _end(self, pipeline: dict, state: str, error: dict | None = None) -> None:
        with self.store.lock:
            if error is not None:
                pipeline["error"] = error
            pipeline["endTime"] = now()
            self._set(pipeline, state)

    def _follow(self, name: str, job: dict) -> None:
        """The backing job changed state (called by the job runner under the store's lock)."""
        pipeline = self.store.collection("trainingPipelines").get(name)
        if pipeline is None or pipeline["state"] not in ACTIVE:
            return
        state = job["state"]
        if state == "JOB_STATE_RUNNING" and pipeline["state"] != "PIPELINE_STATE_CANCELLING":
            self._set(pipeline, "PIPELINE_STATE_RUNNING")
        elif state == "JOB_STATE_CANCELLING":
            self._set(pipeline, "PIPELINE_STATE_CANCELLING")
        elif state == "JOB_STATE_FAILED":
            error = job.get("error") or {"code": 2, "message": "The training job failed."}
            self._end(pipeline, "PIPELINE_STATE_FAILED", copy.deepcopy(error))
        elif state == "JOB_STATE_CANCELLED":
            self._end(pipeline, "PIPELINE_STATE_CANCELLED", {"code": 1, "message": "TrainingPipeline was cancelled."})
        elif state == "JOB_STATE_SUCCEEDED":
            if pipeline.get("modelToUpload") is None:
                self._end(pipeline, "PIPELINE_STATE_SUCCEEDED")
            else:
                threading.Thread(target=self._register_model, args=(name,), name="pipeline-upload", daemon=True).start()

    def _register_model(self, name: str) -> None:
        """Uploads the trained model, then ends the pipeline SUCCEEDED (FAILED if the upload fails)."""
        pipeline = self.get(name)
        if self.jobs.closing:
            return  # the stopping twin's recover() ends the pipeline
        try:
            model = self._upload(pipeline)
        except TwinError as exc:
            self._end(pipeline, "PIPELINE_STATE_FAILED", rpc_status(exc))
        except Exception as exc:
            log.exception("pipeline %s could not upload its model", name)
            self._end(pipeline, "PIPELINE_STATE_FAILED", {"code": 13, "message": f"Uploading the model failed: {exc}"})
        else:
            with self.store.lock:
                pipeline["modelToUpload"] = model
                self._end(pipeline, "PIPELINE_STATE_SUCCEEDED")

    def _upload(self, pipeline: dict) -> dict:
        """The registered model version, uploaded from the job's model directory."""
        spec = _camel_keys(pipeline["trainingTaskInputs"])
        artifact_uri = spec["baseOutputDirectory"]["outputUriPrefix"].rstrip("/") + "/model"
        model = {**pipeline["modelToUpload"], "artifactUri": artifact_uri, "trainingPipeline": pipeline["name"]}
        self._check_artifacts(artifact_uri, model.get("containerSpec", {}).get("imageUri", ""))
        parent = pipeline["name"].rsplit("/trainingPipelines/", 1)[0]
        request = {"model": model, "parentModel": pipeline.get("parentModel"), "modelId": pipeline.get("modelId")}
        uploaded = self.models.upload(parent, {k: v for k, v in request.items() if v})["response"]
        return copy.deepcopy(self.models.get(f"{uploaded['model']}@{uploaded['modelVersionId']}"))

    def _check_artifacts(self, artifact_uri: str, serving_image: str) -> None:
        try:
            names = self.list_objects(artifact_uri)
        except Exception as exc:
            raise FailedPrecondition(f"Could not read the model directory {artifact_uri}: {exc}") from None
        if not names:
            raise FailedPrecondition(
                f"The training script wrote no model to {artifact_uri}: save it to os.environ['AIP_MODEL_DIR']."
            )
        if _TF_SERVING in serving_image and not set(_SAVED_MODEL) & set(names):
            raise FailedPrecondition(
                f"Model directory {artifact_uri} is expected to contain exactly one of: [saved_model.pb, "
                f"saved_model.pbtxt] (the serving image {serving_image} serves TensorFlow SavedModels)."
            )
