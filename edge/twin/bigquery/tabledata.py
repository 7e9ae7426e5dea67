"""`tabledata.insertAll` and `tabledata.list`: streamed rows checked as BigQuery checks them, buffered,
and written to DuckDB in batches by one writer thread, so a caller never waits for the database.

Rows are visible as soon as insertAll answers: every read (list, query, table get) first writes the
buffer of the tables it reads. `insertId`s are remembered per table for the twin's lifetime (the last
million), so a retried insert is dropped as BigQuery drops it within its dedup window. Rows still
in the buffer when the process dies (not stops) are lost: at most `FLUSH_SECONDS` of them.
"""

from __future__ import annotations

import logging
import threading

import duckdb
import orjson

from edge.twin.bigquery.catalog import Catalog, Table, now_ms
from edge.twin.bigquery.errors import Invalid, NotFound, NotImplementedByTwin
from edge.twin.bigquery.rows import RowError, approximate_size, row_encoder
from edge.twin.bigquery.schema import duckdb_type, quote
from edge.twin.bigquery.store import Database

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0  # rows per DuckDB insert matter: ~190 us/row CPU in inserts of 50, ~65 in inserts of 2000
FLUSH_ROWS = 2000
MAX_INSERT_IDS = 1_000_000
MAX_ROWS_PER_REQUEST = 50_000
PAGE_BYTES = 10 * 1024 * 1024


class TableData:
    """Streaming inserts and row listing over the catalog's tables."""

    def __init__(self, db: Database, catalog: Catalog):
        self.db = db
        self.catalog = catalog
        self._dirty: set[Table] = set()
        self._dirty_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._writer = threading.Thread(target=self._run, name="bigquery-writer", daemon=True)
        self._writer.start()

    def stop(self) -> None:
        """Writes every buffered row, then ends the writer thread."""
        self._stopping.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        self.flush_all()

    # ------------------------------------------------------------------------------- insertAll

    def insert_all(self, project: str, dataset: str, table_id: str, body: dict) -> dict:
        table = self.catalog.table(project, dataset, table_id)
        rows = body.get("rows")
        if not rows or not isinstance(rows, list):
            raise Invalid("No rows present in the request.")
        if len(rows) > MAX_ROWS_PER_REQUEST:
            raise Invalid(f"too many rows present in the request, limit: {MAX_ROWS_PER_REQUEST}, count: {len(rows)}.")
        if body.get("templateSuffix"):
            raise NotImplementedByTwin("The twin's BigQuery does not create tables from templateSuffix.")
        if not table.fields:
            raise Invalid(f"Table {table.label} has no schema.")
        accepted, errors = self._check_rows(table, rows, bool(body.get("ignoreUnknownValues")))
        if errors and not body.get("skipInvalidRows"):
            stopped = [{"index": i, "errors": [_error("stopped", "", "")]} for i, _, _ in accepted]
            return _insert_response(sorted(errors + stopped, key=lambda e: e["index"]))
        self._accept(table, accepted)
        return _insert_response(errors)

    @staticmethod
    def _check_rows(table: Table, rows: list, ignore_unknown: bool) -> tuple[list, list]:
        coercer = table.coercer
        accepted, errors = [], []
        for index, row in enumerate(rows):
            try:
                if not isinstance(row, dict):
                    raise RowError("", "Each row must be an object with a `json` field.")
                accepted.append((index, row.get("insertId"), coercer(row.get("json"), ignore_unknown)))
            except RowError as err:
                errors.append({"index": index, "errors": [_error("invalid", err.location, err.message)]})
        return accepted, errors

    def _accept(self, table: Table, accepted: list) -> None:
        with table.lock:
            if table.dropped:
                raise NotFound(f"Not found: Table {table.label}")
            for _, insert_id, values in accepted:
                if insert_id:
                    if insert_id in table.insert_ids:
                        continue
                    table.insert_ids[insert_id] = None
                    if len(table.insert_ids) > MAX_INSERT_IDS:
                        table.insert_ids.popitem(last=False)
                table.buffer.append(values)
            full = len(table.buffer) >= FLUSH_ROWS
        with self._dirty_lock:
            self._dirty.add(table)
        if full:
            self._wake.set()

    # ----------------------------------------------------------------------------------- writer

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush_all()

    def flush_all(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        for table in dirty:
            self.flush(table)

    def flush(self, table: Table) -> None:
        """Writes the table's buffered rows to DuckDB (reads call this first, so they see every row)."""
        with table.flush_lock:
            with table.lock:
                rows, table.buffer = table.buffer, []
            if not rows or table.dropped:
                return
            try:
                self._write(table, rows)
            except duckdb.Error:
                log.exception("batch insert into %s failed; inserting its %d rows one by one", table.label, len(rows))
                for row in rows:
                    try:
                        self._write(table, [row])
                    except duckdb.Error:
                        log.exception("row lost: insert into %s failed: %.300r", table.label, row)

    def _write(self, table: Table, rows: list[tuple]) -> None:
        fields = table.fields
        width = len(fields)
        padded = [row if len(row) == width else row + (None,) * (width - len(row)) for row in rows]
        columns = [list(column) for column in zip(*padded, strict=True)]
        select = ", ".join(f"UNNEST(${i + 1}::{duckdb_type(f)}[])" for i, f in enumerate(fields))
        with self.db.cursor() as cur:
            cur.execute(f"INSERT INTO {table.duck} ({table.columns}) SELECT {select}", columns)
        table.rows += len(rows)
        table.bytes += sum(approximate_size(row) for row in rows)
        table.resource["lastModifiedTime"] = now_ms()

    # ------------------------------------------------------------------------------------- list

    def list_rows(self, project: str, dataset: str, table_id: str, query: dict) -> dict:
        table = self.catalog.table(project, dataset, table_id)
        self.flush(table)
        fields = _selected(table.fields, query.get("selectedFields"))
        out = {"kind": "bigquery#tableDataList", "etag": table.resource["etag"], "totalRows": str(table.rows)}
        if not table.fields:
            return out
        rows, token = read_page(self.db, table.duck, fields, query)
        return out | ({"rows": rows} if rows else {}) | ({"pageToken": token} if token else {})


def read_page(db: Database, source: str, fields: list[dict], query: dict) -> tuple[list[dict], str | None]:
    """One page of `source` (a DuckDB table, read in insertion order) as BigQuery rows, and the next
    page's token: `pageToken` (a row id) or `startIndex` (an offset) says where it starts, `maxResults`
    how many rows at most; a page stops at about 10 MB as BigQuery's do."""
    limit, start_index, token = _page_params(query)
    if limit == 0:
        return [], None
    columns = ", ".join(["rowid"] + [quote(f["name"]) for f in fields])
    # No ORDER BY: DuckDB scans in insertion order (preserve_insertion_order), and sorting would copy every row.
    if token is not None:
        sql, params = f"SELECT {columns} FROM {source} WHERE rowid >= ? LIMIT ?", [token, limit + 1]
    else:
        sql, params = f"SELECT {columns} FROM {source} LIMIT ? OFFSET ?", [limit + 1, start_index]
    encode = row_encoder(fields, _timestamp_format(query))
    out, size, next_token = [], 0, None
    with db.cursor() as cur:
        cur.execute(sql, params)
        while next_token is None and (batch := cur.fetchmany(256)):
            for row in batch:
                if len(out) == limit or size > PAGE_BYTES:
                    next_token = str(row[0])
                    break
                cells = encode(row[1:])
                size += len(orjson.dumps(cells))
                out.append(cells)
    return out, next_token


def _page_params(query: dict) -> tuple[int, int, int | None]:
    try:
        limit = int(query["maxResults"]) if query.get("maxResults") not in (None, "") else 1_000_000
        start_index = int(query.get("startIndex") or 0)
        token = int(query["pageToken"]) if query.get("pageToken") else None
    except ValueError:
        raise Invalid("Invalid maxResults, startIndex or pageToken.") from None
    if limit < 0 or start_index < 0:
        raise Invalid("maxResults and startIndex cannot be negative.")
    return limit, start_index, token


def _timestamp_format(query: dict) -> str:
    """The TIMESTAMP cell format the request asks for (google-cloud-bigquery asks for int64)."""
    output = str(query.get("formatOptions.timestampOutputFormat") or "")
    if output == "ISO8601_STRING":
        return "iso"
    if output == "INT64" or str(query.get("formatOptions.useInt64Timestamp", "")).lower() == "true":
        return "int64"
    return "float"


def _selected(fields: list[dict], selected: str | None) -> list[dict]:
    if not selected:
        return fields
    by_name = {f["name"].lower(): f for f in fields}
    out = []
    for name in selected.split(","):
        top = name.strip().split(".")[0].lower()
        if top not in by_name:
            raise Invalid(f"Invalid field selection {name.strip()}")
        if by_name[top] not in out:
            out.append(by_name[top])
    return out


def _error(reason: str, location: str, message: str) -> dict:
    return {"reason": reason, "location": location, "debugInfo": "", "message": message}


def _insert_response(errors: list) -> dict:
    out = {"kind": "bigquery#tableDataInsertAllResponse"}
    return out | ({"insertErrors": errors} if errors else {})
