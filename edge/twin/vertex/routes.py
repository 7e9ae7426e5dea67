"""URL table and thin handlers of the twin's Vertex AI REST API (`/v1`, and `/ui` for operations)."""

from __future__ import annotations

from edge.twin.http import Request, Response, Router
from edge.twin.vertex.backend import VertexBackend

_P = r"projects/[^/]+/locations/[^/]+"


def _items(key: str, items: list[dict]) -> Response:
    return Response.json({key: sorted(items, key=lambda r: r.get("createTime", ""))})


def vertex_router(backend: VertexBackend) -> Router:
    jobs, models, endpoints, ops = backend.jobs, backend.models, backend.endpoints, backend.operations

    def name(r: Request) -> str:
        return r.params["name"]

    def parent(r: Request) -> str:
        return r.params["parent"]

    return Router(
        [
            # CustomJobs
            (
                rf"/v1/(?P<parent>{_P})/customJobs",
                {
                    "GET": lambda r: _items("customJobs", jobs.list(parent(r), r.query.get("filter"))),
                    "POST": lambda r: Response.json(jobs.create(parent(r), r.json())),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/customJobs/[^/:]+)",
                {
                    "GET": lambda r: Response.json(jobs.get(name(r))),
                    "DELETE": lambda r: Response.json(jobs.delete(name(r))),
                },
            ),
            (rf"/v1/(?P<name>{_P}/customJobs/[^/:]+):cancel", {"POST": lambda r: Response.json(jobs.cancel(name(r)))}),
            # Models
            (
                rf"/v1/(?P<parent>{_P})/models:upload",
                {"POST": lambda r: Response.json(models.upload(parent(r), r.json()))},
            ),
            (
                rf"/v1/(?P<parent>{_P})/models",
                {
                    "GET": lambda r: _items("models", models.list(parent(r), r.query.get("filter"))),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/models/[^/:]+)",
                {
                    "GET": lambda r: Response.json(models.get(name(r))),
                    "PATCH": lambda r: Response.json(models.patch(name(r), r.json(), r.query.get("updateMask"))),
                    "DELETE": lambda r: Response.json(models.delete(name(r))),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/models/[^/:]+):listVersions",
                {
                    "GET": lambda r: _items("models", models.list_versions(name(r), r.query.get("filter"))),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/models/[^/:]+):deleteVersion",
                {
                    "DELETE": lambda r: Response.json(models.delete_version(name(r))),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/models/[^/:]+):mergeVersionAliases",
                {
                    "POST": lambda r: Response.json(models.merge_aliases(name(r), r.json())),
                },
            ),
            # Endpoints
            (
                rf"/v1/(?P<parent>{_P})/endpoints",
                {
                    "GET": lambda r: _items("endpoints", endpoints.list(parent(r), r.query.get("filter"))),
                    "POST": lambda r: Response.json(endpoints.create(parent(r), r.json(), r.query.get("endpointId"))),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/endpoints/[^/:]+)",
                {
                    "GET": lambda r: Response.json(endpoints.get(name(r))),
                    "PATCH": lambda r: Response.json(endpoints.patch(name(r), r.json(), r.query.get("updateMask"))),
                    "DELETE": lambda r: Response.json(endpoints.delete(name(r))),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):update",
                {
                    "POST": lambda r: Response.json(
                        ops.completed(
                            name(r),
                            "UpdateEndpointOperationMetadata",
                            "Endpoint",
                            endpoints.patch(name(r), r.json().get("endpoint", {}), r.query.get("updateMask")),
                        )
                    ),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):deployModel",
                {
                    "POST": lambda r: Response.json(endpoints.deploy(name(r), r.json())),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):undeployModel",
                {
                    "POST": lambda r: Response.json(endpoints.undeploy(name(r), r.json())),
                },
            ),
            (
                rf"/v1/(?P<name>{_P}/endpoints/[^/:]+):predict",
                {
                    "POST": lambda r: Response.json(endpoints.predict(name(r), r.body)),
                },
            ),
            # Operations, polled on /ui by the SDK's REST transport
            (
                rf"/(?:v1|ui)/(?P<name>{_P}(?:/[^/]+/[^/:]+)*/operations/[^/:]+)",
                {
                    "GET": lambda r: Response.json(ops.get(name(r))),
                },
            ),
            # Twin-only controls, never under a Google API prefix
            (r"/_twin/health", {"GET": lambda r: Response.json({"status": "ok"})}),
            (r"/_twin/status", {"GET": lambda r: Response.json(backend.status())}),
            (r"/_twin/reset", {"POST": lambda r: Response.json(backend.reset())}),
            (
                rf"/_twin/logs/(?P<name>{_P}/customJobs/[^/:]+)",
                {
                    "GET": lambda r: _log_chunk(backend, name(r), int(r.query.get("offset", 0))),
                },
            ),
        ]
    )


def _log_chunk(backend: VertexBackend, job: str, offset: int) -> Response:
    """The job's log from byte `offset`, with the offset to ask for next."""
    path = backend.jobs.log_path(job)
    data = b""
    if path.exists():
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(1 << 20)
    return Response.json({"text": data.decode(errors="replace"), "nextOffset": offset + len(data)})
