"""URL table and thin handlers of the twin's Vertex AI REST API (`/v1`, and `/ui` for operations).

One table per resource; predict is the one `async` handler: it runs on the event loop and
awaits the model server. Twin-only controls are under `/_twin/`.
"""

from __future__ import annotations

from edge.twin import logs
from edge.twin.errors import InvalidArgument
from edge.twin.server import Request, Response, Routes, predict_limited
from edge.twin.vertex.backend import VertexBackend
from edge.twin.vertex.batch import BatchPredictionJobs
from edge.twin.vertex.endpoints import Endpoints
from edge.twin.vertex.evaluations import ModelEvaluations
from edge.twin.vertex.jobs import CustomJobs
from edge.twin.vertex.models import ModelRegistry
from edge.twin.vertex.pipelines import TrainingPipelines
from edge.twin.vertex.store import Operations
from edge.twin.vertex.tuning import HyperparameterTuningJobs

_P = r"projects/[^/]+/locations/[^/]+"


def vertex_routes(backend: VertexBackend) -> Routes:
    """Every route of the Vertex twin."""
    return [
        *_endpoint_routes(backend.endpoints, backend.operations),  # first: predict is the hot path
        *_resource_routes("customJobs", backend.jobs),
        *_resource_routes("hyperparameterTuningJobs", backend.tuning),
        *_resource_routes("batchPredictionJobs", backend.batch),
        *_resource_routes("trainingPipelines", backend.pipelines),
        *_model_routes(backend.models),
        *_evaluation_routes(backend.evaluations),
        # Operations, polled on /ui by the SDK's REST transport
        (
            rf"/(?:v1|ui)/(?P<name>{_P}(?:/[^/]+/[^/:]+)*/operations/[^/:]+)",
            {"GET": lambda r: Response.json(backend.operations.get(_name(r)))},
        ),
        *_twin_routes(backend),
    ]


def _name(r: Request) -> str:
    return r.params["name"]


def _parent(r: Request) -> str:
    return r.params["parent"]


def _items(key: str, items: list[dict]) -> Response:
    return Response.json({key: sorted(items, key=lambda r: r.get("createTime", ""))})


def _resource_routes(
    collection: str, jobs: CustomJobs | TrainingPipelines | HyperparameterTuningJobs | BatchPredictionJobs
) -> Routes:
    """create, list (with `filter`), get, delete and cancel of one kind of job (or training pipeline)."""
    return [
        (
            rf"/v1/(?P<parent>{_P})/{collection}",
            {
                "GET": lambda r: _items(collection, jobs.list(_parent(r), r.query.get("filter"))),
                "POST": lambda r: Response.json(jobs.create(_parent(r), r.json())),
            },
        ),
        (
            rf"/v1/(?P<name>{_P}/{collection}/[^/:]+)",
            {
                "GET": lambda r: Response.json(jobs.get(_name(r))),
                "DELETE": lambda r: Response.json(jobs.delete(_name(r))),
            },
        ),
        (rf"/v1/(?P<name>{_P}/{collection}/[^/:]+):cancel", {"POST": lambda r: Response.json(jobs.cancel(_name(r)))}),
    ]


def _model_routes(models: ModelRegistry) -> Routes:
    return [
        (
            rf"/v1/(?P<parent>{_P})/models:upload",
            {"POST": lambda r: Response.json(models.upload(_parent(r), r.json()))},
        ),
        (
            rf"/v1/(?P<parent>{_P})/models",
            {"GET": lambda r: _items("models", models.list(_parent(r), r.query.get("filter")))},
        ),
        (
            rf"/v1/(?P<name>{_P}/models/[^/:]+)",
            {
                "GET": lambda r: Response.json(models.get(_name(r))),
                "PATCH": lambda r: Response.json(models.patch(_name(r), r.json(), r.query.get("updateMask"))),
                "DELETE": lambda r: Response.json(models.delete(_name(r))),
            },
        ),
        (
            rf"/v1/(?P<name>{_P}/models/[^/:]+):listVersions",
            {"GET": lambda r: _items("models", models.list_versions(_name(r), r.query.get("filter")))},
        ),
        (
            rf"/v1/(?P<name>{_P}/models/[^/:]+):deleteVersion",
            {"DELETE": lambda r: Response.json(models.delete_version(_name(r)))},
        ),
        (
            rf"/v1/(?P<name>{_P}/models/[^/:]+):mergeVersionAliases",
            {"POST": lambda r: Response.json(models.merge_aliases(_name(r), r.json()))},
        ),
    ]


def _evaluation_routes(evaluations: ModelEvaluations) -> Routes:
    """Model evaluations and slices; the model may be `ID`, `ID@VERSION` or `ID@alias`."""
    model = rf"{_P}/models/[^/:]+"
    evaluation = rf"{model}/evaluations/[^/:]+"
    return [
        (
            rf"/v1/(?P<parent>{model})/evaluations:import",
            {"POST": lambda r: Response.json(evaluations.import_(_parent(r), r.json()))},
        ),
        (
            rf"/v1/(?P<parent>{model})/evaluations",
            {"GET": lambda r: Response.json(evaluations.list(_parent(r), r.query))},
        ),
        (rf"/v1/(?P<name>{evaluation})", {"GET": lambda r: Response.json(evaluations.get(_name(r)))}),
        (
            rf"/v1/(?P<parent>{evaluation})/slices:batchImport",
            {"POST": lambda r: Response.json(evaluations.import_slices(_parent(r), r.json()))},
        ),
        (
            rf"/v1/(?P<parent>{evaluation})/slices",
            {"GET": lambda r: Response.json(evaluations.list_slices(_parent(r), r.query))},
        ),
        (
            rf"/v1/(?P<name>{evaluation}/slices/[^/:]+)",
            {"GET": lambda r: Response.json(evaluations.get_slice(_name(r)))},
        ),
    ]


def _endpoint_routes(endpoints: Endpoints, ops: Operations) -> Routes:
    @predict_limited
    async def predict(r: Request) -> Response:
        return Response.json(await endpoints.predict(_name(r), r.body))

    def update(r: Request) -> Response:
        endpoint = endpoints.patch(_name(r), r.json().get("endpoint", {}), r.query.get("updateMask"))
        return Response.json(ops.completed(_name(r), "UpdateEndpointOperationMetadata", "Endpoint", endpoint))

    return [
        (rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):predict", {"POST": predict}),
        (
            rf"/v1/(?P<parent>{_P})/endpoints",
            {
                "GET": lambda r: _items("endpoints", endpoints.list(_parent(r), r.query.get("filter"))),
                "POST": lambda r: Response.json(endpoints.create(_parent(r), r.json(), r.query.get("endpointId"))),
            },
        ),
        (
            rf"/v1/(?P<name>{_P}/endpoints/[^/:]+)",
            {
                "GET": lambda r: Response.json(endpoints.get(_name(r))),
                "PATCH": lambda r: Response.json(endpoints.patch(_name(r), r.json(), r.query.get("updateMask"))),
                "DELETE": lambda r: Response.json(endpoints.delete(_name(r))),
            },
        ),
        (rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):update", {"POST": update}),
        (
            rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):deployModel",
            {"POST": lambda r: Response.json(endpoints.deploy(_name(r), r.json()))},
        ),
        (
            rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):undeployModel",
            {"POST": lambda r: Response.json(endpoints.undeploy(_name(r), r.json()))},
        ),
    ]


def _twin_routes(backend: VertexBackend) -> Routes:
    """Twin-only controls, never under a Google API prefix (`GET /_twin/health` comes with every server)."""
    return [
        (r"/_twin/status", {"GET": lambda r: Response.json(backend.status())}),
        (r"/_twin/reset", {"POST": lambda r: Response.json(backend.reset())}),
        (
            rf"/_twin/logs/(?P<name>{_P}/(?:customJobs|hyperparameterTuningJobs|batchPredictionJobs)/[^/:]+)",
            {"GET": lambda r: _log_chunk(backend, r)},
        ),
    ]


def _log_chunk(backend: VertexBackend, r: Request) -> Response:
    """The job's log from byte `offset`, with the offset to ask for next."""
    offset = r.query.get("offset", "0")
    if not offset.isdecimal():
        raise InvalidArgument(f"offset must be a byte offset (0 or more), got {offset!r}.")
    kind = _name(r).split("/")[4]
    jobs = {"hyperparameterTuningJobs": backend.tuning, "batchPredictionJobs": backend.batch}.get(kind, backend.jobs)
    data = logs.read_from(jobs.log_path(_name(r)), int(offset))
    return Response.json({"text": data.decode(errors="replace"), "nextOffset": int(offset) + len(data)})
