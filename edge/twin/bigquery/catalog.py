"""Datasets and tables of the twin's BigQuery: their REST resources (persisted with the rows) and
their DuckDB schemas and tables. Lookups raise NotFound; a table past its `expirationTime` is
deleted when next looked up, as BigQuery would have deleted it.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import threading
import time
from collections import OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass, field

from edge.twin.bigquery.errors import (
    Duplicate,
    Invalid,
    NotFound,
    NotImplementedByTwin,
    PreconditionFailed,
    ResourceInUse,
)
from edge.twin.bigquery.rows import RowCoercer
from edge.twin.bigquery.schema import duckdb_type, merge_for_patch, normalize_fields, quote
from edge.twin.bigquery.store import Database, duck_schema, duck_table

DATASET_ID = re.compile(r"[A-Za-z0-9_]{1,1024}")
TABLE_ID = re.compile(r"[\w\- ]{1,1024}")
DEFAULT_LOCATION = "US"
_DATASET_FIELDS = (
    "description",
    "friendlyName",
    "labels",
    "defaultTableExpirationMs",
    "access",
    "defaultPartitionExpirationMs",
    "defaultCollation",
    "maxTimeTravelHours",
    "isCaseInsensitive",
)
_TABLE_FIELDS = (
    "description",
    "friendlyName",
    "labels",
    "expirationTime",
    "timePartitioning",
    "clustering",
    "requirePartitionFilter",
    "rangePartitioning",
    "encryptionConfiguration",
)
_UNSUPPORTED_TABLE_KINDS = ("view", "materializedView", "externalDataConfiguration", "snapshotDefinition")


def now_ms() -> str:
    return str(int(time.time() * 1000))


def new_etag() -> str:
    return base64.b64encode(os.urandom(12)).decode("ascii")


@dataclass(eq=False)
class Table:
    """A table the twin holds: its resource, and the rows streamed into it that DuckDB has not yet stored.

    `lock` guards `buffer` and `insert_ids`; `flush_lock` serializes writes to the DuckDB table.
    """

    project: str
    dataset: str
    table_id: str
    resource: dict
    rows: int = 0
    bytes: int = 0
    buffer: list = field(default_factory=list)
    insert_ids: OrderedDict = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    flush_lock: threading.Lock = field(default_factory=threading.Lock)
    dropped: bool = False
    coercer: RowCoercer | None = None
    columns: str = ""

    def __post_init__(self):
        self.set_fields(self.fields)

    @property
    def key(self) -> str:
        return f"table/{self.project}/{self.dataset}/{self.table_id}"

    @property
    def duck(self) -> str:
        return duck_table(self.project, self.dataset, self.table_id)

    @property
    def label(self) -> str:
        return f"{self.project}:{self.dataset}.{self.table_id}"

    @property
    def fields(self) -> list[dict]:
        return self.resource.get("schema", {}).get("fields", [])

    def set_fields(self, fields: list[dict]) -> None:
        self.resource["schema"] = {"fields": fields}
        self.coercer = RowCoercer(fields)
        self.columns = ", ".join(quote(f["name"]) for f in fields)


def _dataset_key(project: str, dataset: str) -> str:
    return f"dataset/{project}/{dataset}"


def page(items: list, query: dict, limit: int = 1000) -> tuple[list, str | None]:
    """One page of `items` for `maxResults` / `pageToken` (an offset), and the next page's token."""
    try:
        start = int(query.get("pageToken") or 0)
        size = min(int(query.get("maxResults") or limit), limit)
    except ValueError:
        raise Invalid("Invalid pageToken or maxResults.") from None
    if start < 0 or size < 0:
        raise Invalid("Invalid pageToken or maxResults.")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class Catalog:
    """Datasets and tables of every project; changes are serialized by `lock` and saved transactionally."""

    def __init__(self, db: Database):
        self.db = db
        self.lock = threading.RLock()
        self._datasets: dict[tuple[str, str], dict] = {}
        self._tables: dict[tuple[str, str, str], Table] = {}

    def load(self) -> None:
        """Reads every dataset and table back from the database, counting each table's rows."""
        self._datasets = {}
        self._tables = {}
        for resource in self.db.resources("dataset"):
            ref = resource["datasetReference"]
            self._datasets[(ref["projectId"], ref["datasetId"])] = resource
        with self.db.cursor() as cur:
            for resource in self.db.resources("table"):
                ref = resource["tableReference"]
                table = Table(ref["projectId"], ref["datasetId"], ref["tableId"], resource)
                if table.fields:
                    table.rows = cur.execute(f"SELECT count(*) FROM {table.duck}").fetchone()[0]
                table.bytes = int(resource.get("numBytes", 0))
                self._tables[(table.project, table.dataset, table.table_id)] = table

    def save_statistics(self) -> None:
        """Saves each table's row and byte counts and last change time (kept in memory while running)."""
        with self.lock, self.db.transaction() as cur:
            for table in self._tables.values():
                Database.save(cur, "table", table.key, {**table.resource, "numBytes": str(table.bytes)})

    def tables(self) -> list[Table]:
        return list(self._tables.values())

    def projects(self) -> set[str]:
        return {p for p, _ in set(self._datasets)}

    def projects_datasets(self) -> set[tuple[str, str]]:
        return set(self._datasets)

    def has_table(self, project: str, dataset: str, table_id: str) -> bool:
        return (project, dataset, table_id) in self._tables

    # ---------------------------------------------------------------------------------- datasets

    def create_dataset(self, project: str, body: dict) -> dict:
        ref = body.get("datasetReference") or {}
        dataset = ref.get("datasetId")
        if not isinstance(dataset, str) or not DATASET_ID.fullmatch(dataset):
            raise Invalid(f'Invalid dataset ID "{dataset}". Dataset IDs must be alphanumeric (plus underscores).')
        if ref.get("projectId", project) != project:
            raise Invalid(f"Dataset {ref.get('projectId')}:{dataset} cannot be created in project {project}.")
        with self.lock:
            if any(p == project and d.lower() == dataset.lower() for p, d in self._datasets):
                raise Duplicate(f"Already Exists: Dataset {project}:{dataset}")
            created = now_ms()
            resource = {
                "kind": "bigquery#dataset",
                "id": f"{project}:{dataset}",
                "selfLink": f"/bigquery/v2/projects/{project}/datasets/{dataset}",
                "datasetReference": {"projectId": project, "datasetId": dataset},
                "access": [
                    {"role": "WRITER", "specialGroup": "projectWriters"},
                    {"role": "OWNER", "specialGroup": "projectOwners"},
                    {"role": "READER", "specialGroup": "projectReaders"},
                ],
                **{k: body[k] for k in _DATASET_FIELDS if body.get(k) is not None},
                "location": body.get("location") or DEFAULT_LOCATION,
                "type": "DEFAULT",
                "creationTime": created,
                "lastModifiedTime": created,
                "etag": new_etag(),
            }
            with self.db.transaction() as cur:
                cur.execute(f"CREATE SCHEMA {duck_schema(project, dataset)}")
                Database.save(cur, "dataset", _dataset_key(project, dataset), resource)
            self._datasets[(project, dataset)] = resource
            return copy.deepcopy(resource)

    def dataset(self, project: str, dataset: str) -> dict:
        try:
            return self._datasets[(project, dataset)]
        except KeyError:
            raise NotFound(f"Not found: Dataset {project}:{dataset}") from None

    def get_dataset(self, project: str, dataset: str) -> dict:
        return copy.deepcopy(self.dataset(project, dataset))

    def list_datasets(self, project: str, query: dict) -> dict:
        show_all = str(query.get("all", "")).lower() == "true"
        wanted = _label_filter(query.get("filter"))
        items = [
            {
                "kind": "bigquery#dataset",
                "id": r["id"],
                "datasetReference": r["datasetReference"],
                "location": r["location"],
                **{k: r[k] for k in ("labels", "friendlyName") if k in r},
            }
            for (p, d), r in sorted(list(self._datasets.items()), key=lambda item: item[0])
            if p == project and (show_all or not d.startswith("_")) and wanted(r.get("labels") or {})
        ]
        items, token = page(items, query)
        out = {"kind": "bigquery#datasetList", "etag": new_etag(), "datasets": items}
        return out | ({"nextPageToken": token} if token else {})

    def patch_dataset(self, project: str, dataset: str, body: dict, if_match: str | None) -> dict:
        with self.lock:
            current = self.dataset(project, dataset)
            _check_etag(current, if_match)
            updated = copy.deepcopy(current)
            for key in _DATASET_FIELDS:
                if key in body:
                    _patch_value(updated, key, body[key])
            updated |= {"lastModifiedTime": now_ms(), "etag": new_etag()}
            with self.db.transaction() as cur:
                Database.save(cur, "dataset", _dataset_key(project, dataset), updated)
            self._datasets[(project, dataset)] = updated
            return copy.deepcopy(updated)

    def delete_dataset(self, project: str, dataset: str, delete_contents: bool) -> None:
        with self.lock:
            self.dataset(project, dataset)
            tables = [t for (p, d, _), t in self._tables.items() if (p, d) == (project, dataset)]
            if tables and not delete_contents:
                raise ResourceInUse(f"Dataset {project}:{dataset} is still in use")
            with ExitStack() as stack:
                for table in tables:
                    stack.enter_context(table.flush_lock)
                with self.db.transaction() as cur:
                    cur.execute(f"DROP SCHEMA {duck_schema(project, dataset)} CASCADE")
                    Database.forget_prefix(cur, f"table/{project}/{dataset}/")
                    Database.forget(cur, _dataset_key(project, dataset))
                for table in tables:
                    self._forget_table(table)
            del self._datasets[(project, dataset)]

    # ------------------------------------------------------------------------------------ tables

    def create_table(self, project: str, dataset: str, body: dict) -> dict:
        ref = body.get("tableReference") or {}
        table_id = ref.get("tableId")
        if not isinstance(table_id, str) or not TABLE_ID.fullmatch(table_id):
            raise Invalid(f'Invalid table ID "{table_id}".')
        if (ref.get("projectId", project), ref.get("datasetId", dataset)) != (project, dataset):
            raise Invalid(f"Table reference {ref} does not match the dataset {project}:{dataset} it is created in.")
        for kind in _UNSUPPORTED_TABLE_KINDS:
            if kind in body:
                raise NotImplementedByTwin(f"The twin's BigQuery creates plain tables only, not a {kind}.")
        fields = normalize_fields((body.get("schema") or {}).get("fields") or [])
        _check_partitioning(body, fields)
        with self.lock:
            parent = self.dataset(project, dataset)
            if any(k[:2] == (project, dataset) and k[2].lower() == table_id.lower() for k in self._tables):
                raise Duplicate(f"Already Exists: Table {project}:{dataset}.{table_id}")
            created = now_ms()
            resource = {
                "kind": "bigquery#table",
                "id": f"{project}:{dataset}.{table_id}",
                "selfLink": f"/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table_id}",
                "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table_id},
                **{k: body[k] for k in _TABLE_FIELDS if body.get(k) is not None},
                "type": "TABLE",
                "location": parent["location"],
                "creationTime": created,
                "lastModifiedTime": created,
                "etag": new_etag(),
            }
            if "expirationTime" not in resource and parent.get("defaultTableExpirationMs"):
                resource["expirationTime"] = str(int(created) + int(parent["defaultTableExpirationMs"]))
            table = Table(project, dataset, table_id, resource)
            table.set_fields(fields)
            with self.db.transaction() as cur:
                if fields:
                    cur.execute(f"CREATE TABLE {table.duck} ({_columns_ddl(fields)})")
                Database.save(cur, "table", table.key, resource)
            self._tables[(project, dataset, table_id)] = table
            return self._table_resource(table)

    def table(self, project: str, dataset: str, table_id: str) -> Table:
        """The live table, or NotFound (also once it has expired)."""
        table = self._tables.get((project, dataset, table_id))
        if table is None:
            self.dataset(project, dataset)
            raise NotFound(f"Not found: Table {project}:{dataset}.{table_id}")
        if _expired(table.resource):
            self._drop(table)
            raise NotFound(f"Not found: Table {project}:{dataset}.{table_id}")
        return table

    def get_table(self, project: str, dataset: str, table_id: str) -> dict:
        return self._table_resource(self.table(project, dataset, table_id))

    def list_tables(self, project: str, dataset: str, query: dict) -> dict:
        self.dataset(project, dataset)
        items = []
        for (p, d, _), table in sorted(list(self._tables.items()), key=lambda item: item[0]):
            if (p, d) != (project, dataset) or _expired(table.resource):
                continue
            r = table.resource
            keep = ("creationTime", "expirationTime", "labels", "friendlyName", "timePartitioning", "clustering")
            items.append(
                {
                    "kind": "bigquery#table",
                    "id": r["id"],
                    "tableReference": r["tableReference"],
                    "type": r["type"],
                    **{k: r[k] for k in keep if k in r},
                }
            )
        total = len(items)
        items, token = page(items, query)
        out = {"kind": "bigquery#tableList", "etag": new_etag(), "tables": items, "totalItems": total}
        return out | ({"nextPageToken": token} if token else {})

    def patch_table(self, project: str, dataset: str, table_id: str, body: dict, if_match: str | None) -> dict:
        with self.lock:
            table = self.table(project, dataset, table_id)
            _check_etag(table.resource, if_match)
            updated = copy.deepcopy(table.resource)
            for key in _TABLE_FIELDS:
                if key in body:
                    _patch_value(updated, key, body[key])
            fields = table.fields
            if "schema" in body:
                fields = normalize_fields((body["schema"] or {}).get("fields") or [])
                fields = merge_for_patch(table.fields, fields) if table.fields else fields
            _check_partitioning(updated, fields)
            with table.flush_lock:
                self._alter(table, fields, updated)
            return self._table_resource(table)

    def _alter(self, table: Table, fields: list[dict], updated: dict) -> None:
        added = fields[len(table.fields) :]
        updated |= {"lastModifiedTime": now_ms(), "etag": new_etag(), "schema": {"fields": fields}}
        with self.db.transaction() as cur:
            if not table.fields and fields:
                cur.execute(f"CREATE TABLE {table.duck} ({_columns_ddl(fields)})")
            elif table.fields:
                for f in added:
                    cur.execute(f"ALTER TABLE {table.duck} ADD COLUMN {quote(f['name'])} {duckdb_type(f)}")
            Database.save(cur, "table", table.key, updated)
        table.resource = updated
        table.set_fields(fields)

    def delete_table(self, project: str, dataset: str, table_id: str) -> None:
        self._drop(self.table(project, dataset, table_id))

    def _drop(self, table: Table) -> None:
        with self.lock, table.flush_lock:
            if table.dropped:
                return
            with self.db.transaction() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table.duck}")
                Database.forget(cur, table.key)
            self._forget_table(table)

    def _forget_table(self, table: Table) -> None:
        table.dropped = True
        with table.lock:
            table.buffer.clear()
        self._tables.pop((table.project, table.dataset, table.table_id), None)

    def _table_resource(self, table: Table) -> dict:
        resource = copy.deepcopy(table.resource)
        with table.lock:
            pending = len(table.buffer)
        resource |= {"numRows": str(table.rows + pending), "numBytes": str(table.bytes), "numLongTermBytes": "0"}
        if pending:
            resource["streamingBuffer"] = {"estimatedRows": str(pending), "estimatedBytes": "0"}
        return resource

    def clear(self) -> None:
        """Forgets every dataset and table (the caller has emptied the database)."""
        with self.lock:
            for table in list(self._tables.values()):
                self._forget_table(table)
            self._datasets.clear()


def _expired(resource: dict) -> bool:
    expires = resource.get("expirationTime")
    return bool(expires) and int(expires) <= int(now_ms())


def _columns_ddl(fields: list[dict]) -> str:
    return ", ".join(f"{quote(f['name'])} {duckdb_type(f)}" for f in fields)


def _check_etag(resource: dict, if_match: str | None) -> None:
    if if_match and if_match not in ("*", resource.get("etag")):
        raise PreconditionFailed("Precondition check failed.")


def _patch_value(resource: dict, key: str, value) -> None:
    """PATCH semantics: null removes a field; a labels map merges, a null label removes that label."""
    if value is None:
        resource.pop(key, None)
    elif key == "labels" and isinstance(value, dict):
        labels = {**resource.get("labels", {}), **value}
        resource["labels"] = {k: v for k, v in labels.items() if v is not None}
    else:
        resource[key] = value


def _check_partitioning(body: dict, fields: list[dict]) -> None:
    column = (body.get("timePartitioning") or {}).get("field")
    if column is None:
        return
    match = [f for f in fields if f["name"].lower() == column.lower()]
    if not match or match[0]["type"] not in ("TIMESTAMP", "DATE", "DATETIME") or match[0]["mode"] == "REPEATED":
        raise Invalid(
            f"The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. "
            f"The type found is: {match[0]['type'] if match else 'missing'}."
        )


def _label_filter(expression: str | None):
    """The predicate of a dataset list `filter` such as `labels.env:prod labels.team`."""
    if not expression:
        return lambda labels: True
    terms = []
    for term in expression.split():
        if not term.startswith("labels."):
            raise Invalid(f"Invalid filter: {expression}")
        key, _, value = term[len("labels.") :].partition(":")
        terms.append((key, value or None))
    return lambda labels: all(k in labels and (v is None or labels[k] == v) for k, v in terms)
