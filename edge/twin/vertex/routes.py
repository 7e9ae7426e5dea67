"""URL table and thin handlers of the twin's Vertex AI REST API (`/v1`, and `/ui` for operations).

One table per resource; predict is the one `async` handler: it runs on the event loop and
awaits the model server. Twin-only controls are under `/_twin/`.
"""

from __future__ import annotations

from edge.twin import logs
from edge.twin.errors import InvalidArgument
from edge.twin.server import Request, Response, Routes, predict_limited
from edge.twin.vertex.backend import VertexBackend
from edge.twin.vertex.endpoints import Endpoints
from edge.twin.vertex.jobs import CustomJobs
from edge.twin.vertex.models import ModelRegistry
from edge.twin.vertex.store import Operations

_P = r"projects/[^/]+/locations/[^/]+"


def vertex_routes(backend: VertexBackend) -> Routes:
    """Every route of the Vertex twin."""
    return [
        *_endpoint_routes(backend.endpoints, backend.operations),  # first: predict is the hot path
        *_job_routes(backend.jobs),
        *_model_routes(backend.models),
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


def _job_routes(jobs: CustomJobs) -> Routes:
    return [
        (
            rf"/v1/(?P<parent>{_P})/customJobs",
            {
                "GET": lambda r: _items("customJobs", jobs.list(_parent(r), r.query.get("filter"))),
                "POST": lambda r: Response.json(jobs.create(_parent(r), r.json())),
            },
        ),
        (
            rf"/v1/(?P<name>{_P}/customJobs/[^/:]+)",
            {
                "GET": lambda r: Response.json(jobs.get(_name(r))),
                "DELETE": lambda r: Response.json(jobs.delete(_name(r))),
            },
        ),
        (rf"/v1/(?P<name>{_P}/customJobs/[^/:]+):cancel", {"POST": lambda r: Response.json(jobs.cancel(_name(r)))}),
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
        (rf"/_twin/logs/(?P<name>{_P}/customJobs/[^/:]+)", {"GET": lambda r: _log_chunk(backend, r)}),
    ]


def _log_chunk(backend: VertexBackend, r: Request) -> Response:
    """The job's log from byte `offset`, with the offset to ask for next."""
    offset = r.query.get("offset", "0")
    if not offset.isdecimal():
        raise InvalidArgument(f"offset must be a byte offset (0 or more), got {offset!r}.")
    data = logs.read_from(backend.jobs.log_path(_name(r)), int(offset))
    return Response.json({"text": data.decode(errors="replace"), "nextOffset": int(offset) + len(data)})
