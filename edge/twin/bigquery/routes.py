"""URL table and thin handlers of the twin's BigQuery v2 REST API, on the prefix google-cloud-bigquery
uses with a custom endpoint (`{api_endpoint}/bigquery/v2/...`).

Datasets: insert, get, list, patch / update, delete (deleteContents). Tables: insert, get, list,
patch / update, delete. Tabledata: insertAll, list. Jobs: insert (query), query, get,
getQueryResults, list, cancel, delete. Projects: list (the projects the twin has seen).
"""

from __future__ import annotations

from edge.twin.bigquery.backend import BigQueryBackend
from edge.twin.bigquery.errors import Invalid
from edge.twin.errors import TwinError
from edge.twin.server import Request, Response

_P = r"/bigquery/v2/projects/(?P<project>[^/]+)"
_D = _P + r"/datasets/(?P<dataset>[^/]+)"
_T = _D + r"/tables/(?P<table>[^/]+)"
_J = r"/(?P<job>[^/]+)"


def bigquery_routes(backend: BigQueryBackend) -> list[tuple[str, dict]]:
    """The `(regex, {METHOD: handler})` routes of the BigQuery API, for the twin's one HTTP layer."""
    catalog, tabledata, jobs = backend.catalog, backend.tabledata, backend.jobs

    def dataset(r: Request) -> tuple[str, str]:
        return r.params["project"], r.params["dataset"]

    def table(r: Request) -> tuple[str, str, str]:
        return r.params["project"], r.params["dataset"], r.params["table"]

    def job(r: Request) -> tuple[str, str]:
        return r.params["project"], r.params["job"]

    def delete_dataset(r: Request) -> Response:
        catalog.delete_dataset(*dataset(r), str(r.query.get("deleteContents", "")).lower() == "true")
        return _no_content()

    def delete_table(r: Request) -> Response:
        catalog.delete_table(*table(r))
        return _no_content()

    def delete_job(r: Request) -> Response:
        jobs.delete(*job(r))
        return _no_content()

    def patch_dataset(r: Request) -> Response:
        return Response.json(catalog.patch_dataset(*dataset(r), _body(r), _header(r, "If-Match")))

    def patch_table(r: Request) -> Response:
        return Response.json(catalog.patch_table(*table(r), _body(r), _header(r, "If-Match")))

    return [
        (r"/bigquery/v2/projects", {"GET": lambda r: Response.json(_projects(backend))}),
        (
            _P + r"/datasets",
            {
                "GET": lambda r: Response.json(catalog.list_datasets(r.params["project"], r.query)),
                "POST": lambda r: Response.json(catalog.create_dataset(r.params["project"], _body(r))),
            },
        ),
        (
            _D,
            {
                "GET": lambda r: Response.json(catalog.get_dataset(*dataset(r))),
                "PATCH": patch_dataset,
                "PUT": patch_dataset,
                "DELETE": delete_dataset,
            },
        ),
        (
            _D + r"/tables",
            {
                "GET": lambda r: Response.json(catalog.list_tables(*dataset(r), r.query)),
                "POST": lambda r: Response.json(catalog.create_table(*dataset(r), _body(r))),
            },
        ),
        (
            _T,
            {
                "GET": lambda r: Response.json(_get_table(backend, *table(r))),
                "PATCH": patch_table,
                "PUT": patch_table,
                "DELETE": delete_table,
            },
        ),
        (_T + r"/insertAll", {"POST": lambda r: Response.json(tabledata.insert_all(*table(r), _body(r)))}),
        (_T + r"/data", {"GET": lambda r: Response.json(tabledata.list_rows(*table(r), r.query))}),
        (
            _P + r"/jobs",
            {
                "GET": lambda r: Response.json(jobs.list(r.params["project"], r.query)),
                "POST": lambda r: Response.json(jobs.insert(r.params["project"], _body(r))),
            },
        ),
        (_P + r"/jobs" + _J, {"GET": lambda r: Response.json(jobs.get(*job(r)))}),
        (_P + r"/jobs" + _J + r"/cancel", {"POST": lambda r: Response.json(jobs.cancel(*job(r)))}),
        (_P + r"/jobs" + _J + r"/delete", {"DELETE": delete_job}),
        (_P + r"/queries", {"POST": lambda r: Response.json(jobs.query(r.params["project"], _body(r)))}),
        (_P + r"/queries" + _J, {"GET": lambda r: Response.json(jobs.results(*job(r), r.query))}),
    ]


def _body(r: Request) -> dict:
    """The JSON body; a malformed one is BigQuery's 400 `invalid`."""
    try:
        return r.json()
    except TwinError as err:
        raise Invalid(err.message) from None


def _header(r: Request, name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in r.headers.items() if k.lower() == lowered), None)


def _no_content() -> Response:
    return Response(status=204, body=b"", content_type=None)


def _get_table(backend: BigQueryBackend, project: str, dataset: str, table_id: str) -> dict:
    """tables.get, after writing the table's buffered rows (so numRows counts every streamed row)."""
    backend.tabledata.flush(backend.catalog.table(project, dataset, table_id))
    return backend.catalog.get_table(project, dataset, table_id)


def _projects(backend: BigQueryBackend) -> dict:
    names = sorted({t.project for t in backend.catalog.tables()} | backend.catalog.projects())
    projects = [
        {"kind": "bigquery#project", "id": p, "projectReference": {"projectId": p}, "friendlyName": p} for p in names
    ]
    return {"kind": "bigquery#projectList", "etag": "", "projects": projects, "totalItems": len(projects)}
