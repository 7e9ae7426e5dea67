"""Query jobs: `jobs.insert` / `jobs.query` create a job that runs on a worker thread (PENDING ->
RUNNING -> DONE, with an `errorResult` when it fails), `jobs.getQueryResults` waits for it up to
`timeoutMs` and pages through its results. Results are written to an in-memory DuckDB table per job
(the last `KEEP_RESULTS` are kept; older ones, or any after a restart, are computed again when
asked for). Jobs themselves are saved with the tables, the newest `KEEP_JOBS` across restarts.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb

from edge.twin.bigquery.catalog import Catalog, new_etag, now_ms, page
from edge.twin.bigquery.errors import (
    BackendError,
    BigQueryError,
    Duplicate,
    Invalid,
    InvalidQuery,
    NotFound,
    NotImplementedByTwin,
    ResourceInUse,
    Stopped,
)
from edge.twin.bigquery.schema import field_from_duckdb
from edge.twin.bigquery.sql import Translation, translate, uses_legacy_sql
from edge.twin.bigquery.store import RESULTS, Database
from edge.twin.bigquery.tabledata import TableData, read_page

log = logging.getLogger(__name__)

KEEP_RESULTS = 8  # in memory: a 10,000-row window of requests of ~1,000 numbers each takes ~40 MB
KEEP_JOBS = 1000
DEFAULT_WAIT_MS = 10_000
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,1024}")
_QUERY_REQUEST_KEYS = (
    "query",
    "useLegacySql",
    "parameterMode",
    "queryParameters",
    "defaultDataset",
    "useQueryCache",
    "maximumBytesBilled",
    "connectionProperties",
)


@dataclass(eq=False)
class Job:
    """One job: its REST resource, and while the twin runs, its completion and its results."""

    resource: dict
    finished: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    results: str | None = None
    cursor: duckdb.DuckDBPyConnection | None = None

    @property
    def project(self) -> str:
        return self.resource["jobReference"]["projectId"]

    @property
    def job_id(self) -> str:
        return self.resource["jobReference"]["jobId"]

    @property
    def state(self) -> str:
        return self.resource["status"]["state"]

    @property
    def config(self) -> dict:
        return self.resource["configuration"]["query"]


class Jobs:
    """Query jobs of every project."""

    def __init__(self, db: Database, catalog: Catalog, tabledata: TableData):
        self.db = db
        self.catalog = catalog
        self.tabledata = tabledata
        self._jobs: dict[tuple[str, str], Job] = {}
        self._requests: OrderedDict[str, Job] = OrderedDict()
        self._results: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._counter = 0
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Loads the saved jobs; a job the last run left unfinished is DONE with an error."""
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bigquery-query")
        resources = sorted(self.db.resources("job"), key=lambda r: int(r["statistics"]["creationTime"]))
        if len(resources) > KEEP_JOBS:
            with self.db.transaction() as cur:
                for old in resources[:-KEEP_JOBS]:
                    ref = old["jobReference"]
                    Database.forget(cur, f"job/{ref['projectId']}/{ref['jobId']}")
        self._jobs = {}
        for resource in resources[-KEEP_JOBS:]:
            job = Job(resource)
            if job.state != "DONE":
                self._finish(job, BackendError("The twin stopped while this job ran."))
            job.finished.set()
            self._jobs[(job.project, job.job_id)] = job

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for job in list(self._jobs.values()):
            _interrupt(job)
        pool.shutdown(wait=True, cancel_futures=True)
        for job in list(self._jobs.values()):
            if job.state != "DONE":
                self._finish(job, BackendError("The twin stopped while this job ran."))

    def forget_all(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._requests.clear()
            self._results.clear()

    # -------------------------------------------------------------------------------- REST calls

    def insert(self, project: str, body: dict) -> dict:
        """jobs.insert: a query job (a dry run answers at once and keeps no job)."""
        config = body.get("configuration") or {}
        if "query" not in config:
            kinds = ", ".join(k for k in ("load", "extract", "copy") if k in config) or "this"
            raise NotImplementedByTwin(f"The twin's BigQuery runs query jobs only, not {kinds} jobs.")
        query_config = config["query"]
        if query_config.get("destinationTable"):
            raise NotImplementedByTwin("The twin's BigQuery does not write query results to a destination table.")
        ref = body.get("jobReference") or {}
        job_id = ref.get("jobId") or f"job_{uuid.uuid4().hex}"
        if not JOB_ID.fullmatch(job_id):
            raise Invalid(f'Invalid job ID "{job_id}".')
        if config.get("dryRun"):
            return self._dry_run_job(project, ref, config)
        job = self._create(project, job_id, ref.get("location"), config)
        return self._resource(job)

    def query(self, project: str, body: dict) -> dict:
        """jobs.query: runs a query job and answers with its first page, or `jobComplete: false` if it
        takes longer than `timeoutMs`."""
        config = {"query": {k: body[k] for k in _QUERY_REQUEST_KEYS if k in body}}
        if body.get("labels"):
            config["labels"] = body["labels"]
        if body.get("dryRun"):
            schema = self._dry_run_schema(project, config["query"])
            return {
                "kind": "bigquery#queryResponse",
                "schema": {"fields": schema},
                "jobComplete": True,
                "jobReference": {"projectId": project, "location": body.get("location") or "US"},
                "totalBytesProcessed": "0",
                "cacheHit": False,
            }
        request_id = body.get("requestId")
        with self._lock:
            job = self._requests.get(request_id) if request_id else None
        if job is None:
            job = self._create(project, f"job_{uuid.uuid4().hex}", body.get("location"), config)
            if request_id:
                with self._lock:
                    self._requests[request_id] = job
                    while len(self._requests) > KEEP_JOBS:
                        self._requests.popitem(last=False)
        params = {k: v for k, v in body.items() if k in ("maxResults", "timeoutMs")}
        params |= {f"formatOptions.{k}": v for k, v in (body.get("formatOptions") or {}).items()}
        return {**self.results(project, job.job_id, params), "kind": "bigquery#queryResponse"}

    def get(self, project: str, job_id: str) -> dict:
        return self._resource(self._job(project, job_id))

    def list(self, project: str, query: dict) -> dict:
        wanted = {s.strip().upper() for s in str(query.get("stateFilter") or "").split(",") if s.strip()}
        jobs = [j for (p, _), j in list(self._jobs.items()) if p == project and (not wanted or j.state in wanted)]
        jobs.sort(key=lambda j: int(j.resource["statistics"]["creationTime"]), reverse=True)
        items = []
        for job in jobs:
            r = self._resource(job)
            items.append(
                {
                    "kind": "bigquery#job",
                    "id": r["id"],
                    "jobReference": r["jobReference"],
                    "state": job.state,
                    "status": r["status"],
                    "statistics": r["statistics"],
                    "configuration": r["configuration"],
                    **({"errorResult": r["status"]["errorResult"]} if "errorResult" in r["status"] else {}),
                }
            )
        items, token = page(items, query)
        out = {"kind": "bigquery#jobList", "etag": new_etag(), "jobs": items}
        return out | ({"nextPageToken": token} if token else {})

    def cancel(self, project: str, job_id: str) -> dict:
        job = self._job(project, job_id)
        _interrupt(job)
        return {"kind": "bigquery#jobCancelResponse", "job": self._resource(job)}

    def delete(self, project: str, job_id: str) -> None:
        job = self._job(project, job_id)
        if job.state != "DONE":
            raise Invalid(f"Job {project}:{job_id} is still running and cannot be deleted.")
        with self._lock:
            self._jobs.pop((project, job_id), None)
            self._results.pop(f"{project}:{job_id}", None)
        self._drop_results(job)
        with self.db.transaction() as cur:
            Database.forget(cur, _job_key(job))

    def results(self, project: str, job_id: str, query: dict) -> dict:
        """jobs.getQueryResults: waits up to `timeoutMs` for the job, then answers one page of its rows."""
        job = self._job(project, job_id)
        try:
            wait_ms = int(query.get("timeoutMs") or DEFAULT_WAIT_MS)
        except ValueError:
            raise Invalid("Invalid timeoutMs.") from None
        out = {
            "kind": "bigquery#getQueryResultsResponse",
            "etag": new_etag(),
            "jobReference": job.resource["jobReference"],
        }
        if not job.finished.wait(max(0, min(wait_ms, 60_000)) / 1000):
            return out | {"jobComplete": False}
        error = job.resource["status"].get("errorResult")
        if error:
            raise _error_from(error)
        stats = job.resource["statistics"]
        schema = stats["query"]["schema"]["fields"]
        out |= {
            "schema": {"fields": schema},
            "totalRows": stats["query"]["totalRows"],
            "jobComplete": True,
            "totalBytesProcessed": stats["totalBytesProcessed"],
            "cacheHit": False,
        }
        if str(query.get("maxResults")) == "0":
            return out
        rows, token = read_page(self.db, self._result_table(job), schema, query)
        return out | ({"rows": rows} if rows else {}) | ({"pageToken": token} if token else {})

    # --------------------------------------------------------------------------------- running

    def _create(self, project: str, job_id: str, location: str | None, config: dict) -> Job:
        created = now_ms()
        resource = {
            "kind": "bigquery#job",
            "etag": new_etag(),
            "id": f"{project}:{location or 'US'}.{job_id}",
            "selfLink": f"/bigquery/v2/projects/{project}/jobs/{job_id}",
            "jobReference": {"projectId": project, "jobId": job_id, "location": location or "US"},
            "configuration": {**config, "jobType": "QUERY"},
            "status": {"state": "PENDING"},
            "statistics": {"creationTime": created},
        }
        job = Job(resource)
        with self._lock:
            if (project, job_id) in self._jobs:
                raise Duplicate(f"Already Exists: Job {project}:{location or 'US'}.{job_id}")
            self._jobs[(project, job_id)] = job
            self._prune()
        with self.db.transaction() as cur:
            Database.save(cur, "job", _job_key(job), resource)
        if self._pool is None:
            raise BackendError("the twin's BigQuery is not running")
        self._pool.submit(self._run, job)
        return job

    def _run(self, job: Job) -> None:
        _update(job, status={"state": "RUNNING"}, statistics={"startTime": now_ms()})
        try:
            translation = self._translate(job.project, job.config)
            self._materialize(job, translation, record=True)
            self._finish(job, None)
        except BigQueryError as err:
            self._finish(job, err)
        except Exception as exc:  # a bug in the twin: the job fails, the twin keeps serving
            log.exception("query job %s failed", job.job_id)
            self._finish(job, BackendError(f"twin internal error: {type(exc).__name__}: {exc}"))

    def _translate(self, project: str, config: dict) -> Translation:
        query = config.get("query")
        if not isinstance(query, str) or not query.strip():
            raise InvalidQuery("Query text is empty.")
        if uses_legacy_sql(query, config.get("useLegacySql")):
            raise InvalidQuery("The twin's BigQuery runs standard SQL only: set useLegacySql to false.")
        translation = translate(
            query,
            project=project,
            default_dataset=config.get("defaultDataset"),
            parameters=config.get("queryParameters") or [],
            resolve=self.catalog.table,
        )
        for table in translation.tables:
            self.tabledata.flush(table)
        return translation

    def _materialize(self, job: Job, translation: Translation, record: bool) -> None:
        """Runs the query into the job's results table; `record` stores schema and row count on the job."""
        with self._lock:
            self._counter += 1
            name = f"{RESULTS}.r{self._counter}"
        with self.db.cursor() as cur:
            job.cursor = cur
            try:
                cur.execute(f"CREATE TABLE {name} AS {translation.sql}", translation.params)
                relation = cur.sql(f"SELECT * FROM {name}")
                schema = [field_from_duckdb(n, t) for n, t in zip(relation.columns, relation.types, strict=True)]
                total = cur.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            except BaseException as exc:
                job.cursor = None
                with contextlib.suppress(duckdb.Error):
                    cur.execute(f"DROP TABLE IF EXISTS {name}")
                if isinstance(exc, duckdb.InterruptException):
                    raise Stopped("Job execution was cancelled: User requested cancellation") from None
                if isinstance(exc, duckdb.Error):
                    raise InvalidQuery(_duckdb_message(exc)) from None
                raise
            job.cursor = None
        job.results = name
        self._keep_results(job)
        if record:
            processed = str(sum(t.bytes for t in translation.tables))
            query_stats = {
                "schema": {"fields": schema},
                "totalRows": str(total),
                "statementType": "SELECT",
                "totalBytesProcessed": processed,
                "totalBytesBilled": "0",
                "cacheHit": False,
            }
            _update(job, statistics={"totalBytesProcessed": processed, "query": query_stats})

    def _finish(self, job: Job, error: BigQueryError | None) -> None:
        status = {"state": "DONE"}
        if error is not None:
            status |= {"errorResult": error.error_proto(), "errors": [error.error_proto()]}
        ended = now_ms()
        _update(
            job,
            status=status,
            statistics={"startTime": job.resource["statistics"].get("startTime", ended), "endTime": ended},
        )
        try:
            with self.db.transaction() as cur:
                Database.save(cur, "job", _job_key(job), job.resource)
        except (duckdb.Error, BigQueryError):
            log.exception("could not save job %s", job.job_id)
        job.finished.set()

    def _result_table(self, job: Job) -> str:
        """The job's results table, computing the results again if they are no longer kept."""
        with job.lock:
            if job.results is None:
                self._materialize(job, self._translate(job.project, job.config), record=False)
            return job.results

    def _keep_results(self, job: Job) -> None:
        with self._lock:
            self._results[f"{job.project}:{job.job_id}"] = job
            evicted = []
            while len(self._results) > KEEP_RESULTS:
                evicted.append(self._results.popitem(last=False)[1])
        for old in evicted:
            with old.lock:
                self._drop_results(old)

    def _drop_results(self, job: Job) -> None:
        name, job.results = job.results, None
        if name is not None:
            with self.db.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {name}")

    def _dry_run_job(self, project: str, ref: dict, config: dict) -> dict:
        schema = self._dry_run_schema(project, config["query"])
        now = now_ms()
        return {
            "kind": "bigquery#job",
            "etag": new_etag(),
            "jobReference": {"projectId": project, "location": ref.get("location") or "US"},
            "configuration": {**config, "jobType": "QUERY"},
            "status": {"state": "DONE"},
            "statistics": {
                "creationTime": now,
                "totalBytesProcessed": "0",
                "query": {
                    "schema": {"fields": schema},
                    "totalBytesProcessed": "0",
                    "totalBytesBilled": "0",
                    "cacheHit": False,
                    "statementType": "SELECT",
                },
            },
        }

    def _dry_run_schema(self, project: str, config: dict) -> list[dict]:
        translation = self._translate(project, config)
        with self.db.cursor() as cur:
            try:
                relation = cur.sql(translation.sql, params=translation.params or None)
                return [field_from_duckdb(n, t) for n, t in zip(relation.columns, relation.types, strict=True)]
            except duckdb.Error as exc:
                raise InvalidQuery(_duckdb_message(exc)) from None

    # ---------------------------------------------------------------------------------- helpers

    def _job(self, project: str, job_id: str) -> Job:
        job = self._jobs.get((project, job_id))
        if job is None:
            raise NotFound(f"Not found: Job {project}:{job_id}")
        return job

    @staticmethod
    def _resource(job: Job) -> dict:
        return copy.deepcopy(job.resource)

    def _prune(self) -> None:
        """Keeps the newest KEEP_JOBS jobs (caller holds `_lock`)."""
        excess = len(self._jobs) - KEEP_JOBS
        if excess <= 0:
            return
        done = sorted(
            (j for j in self._jobs.values() if j.state == "DONE"),
            key=lambda j: int(j.resource["statistics"]["creationTime"]),
        )
        for job in done[:excess]:
            self._jobs.pop((job.project, job.job_id), None)
            self._results.pop(f"{job.project}:{job.job_id}", None)


def _update(job: Job, status: dict | None = None, statistics: dict | None = None) -> None:
    """Replaces the job's resource (never changed in place, so readers may copy it at any time)."""
    resource = dict(job.resource)
    if status is not None:
        resource["status"] = status
    if statistics is not None:
        resource["statistics"] = {**resource["statistics"], **statistics}
    resource["etag"] = new_etag()
    job.resource = resource


def _interrupt(job: Job) -> None:
    """Stops the job's query if it is running (DuckDB raises InterruptException in the job's thread)."""
    cursor = job.cursor
    if cursor is not None:
        try:
            cursor.interrupt()
        except duckdb.Error:
            pass  # it finished meanwhile


def _job_key(job: Job) -> str:
    return f"job/{job.project}/{job.job_id}"


def _duckdb_message(exc: duckdb.Error) -> str:
    """DuckDB's error, first line first, without DuckDB's internal names of the twin's tables."""
    text = str(exc).strip()
    return re.sub(r'"([^"]+)\.([^".]+)"\."([^"]+)"', r"\1:\2.\3", text)


def _error_from(proto: dict) -> BigQueryError:
    """The error a job's `errorResult` describes, to raise from jobs.getQueryResults and jobs.query."""
    classes = {
        c.reason: c for c in (Invalid, InvalidQuery, NotFound, Duplicate, NotImplementedByTwin, ResourceInUse, Stopped)
    }
    cls = classes.get(proto.get("reason"), BackendError)
    return cls(proto.get("message", ""), proto.get("location", ""))
