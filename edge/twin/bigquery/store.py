"""The twin BigQuery's one DuckDB database file: rows, metadata and the engine's safety settings.

Layout inside `bigquery.duckdb`: a DuckDB schema per dataset named `project.dataset`, a DuckDB table
per BigQuery table; the resources (datasets, tables, jobs) as the REST JSON they are served as in
`__twin.resources`; query results in an in-memory database `__results` (re-run if asked for after
a restart). User SQL runs with file access, extension loading and configuration changes disabled.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from edge.twin.bigquery.errors import BackendError
from edge.twin.bigquery.schema import quote

log = logging.getLogger(__name__)

RESULTS = "__results"
_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}


def duck_schema(project: str, dataset: str) -> str:
    """The quoted DuckDB schema holding a dataset's tables."""
    return quote(f"{project}.{dataset}")


def duck_table(project: str, dataset: str, table: str) -> str:
    """The quoted DuckDB name of a BigQuery table."""
    return f"{duck_schema(project, dataset)}.{quote(table)}"


class Database:
    """Opens `path` (created if missing); `cursor()` and `transaction()` may be used from any thread."""

    def __init__(self, path: Path):
        self.path = path
        self._con: duckdb.DuckDBPyConnection | None = None
        self._open_lock = threading.Lock()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), config=dict(_CONFIG))
        except duckdb.Error as exc:
            raise BackendError(f"cannot open the twin's BigQuery database {self.path}: {exc}") from None
        con.execute("LOAD icu; LOAD json; SET GLOBAL TimeZone = 'UTC'")
        con.execute(f"ATTACH ':memory:' AS {RESULTS}")
        con.execute("CREATE SCHEMA IF NOT EXISTS __twin")
        con.execute("CREATE TABLE IF NOT EXISTS __twin.resources (key VARCHAR, kind VARCHAR, body VARCHAR)")
        con.execute("SET enable_external_access = false; SET lock_configuration = true")
        self._con = con

    def close(self) -> None:
        with self._open_lock:
            con, self._con = self._con, None
        if con is not None:
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error:
                log.exception("checkpoint of %s failed", self.path)
            con.close()

    @property
    def is_open(self) -> bool:
        return self._con is not None

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of this thread's own to the database, closed after use (they cost microseconds)."""
        con = self._con
        if con is None:
            raise BackendError("the twin's BigQuery is not running")
        cur = con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.cursor() as cur:
            cur.begin()
            try:
                yield cur
            except BaseException:
                cur.rollback()
                raise
            cur.commit()

    def resources(self, kind: str) -> list[dict]:
        with self.cursor() as cur:
            rows = cur.execute("SELECT body FROM __twin.resources WHERE kind = ? ORDER BY key", [kind]).fetchall()
        return [json.loads(body) for (body,) in rows]

    @staticmethod
    def save(cur: duckdb.DuckDBPyConnection, kind: str, key: str, body: dict) -> None:
        cur.execute("DELETE FROM __twin.resources WHERE key = ?", [key])
        cur.execute("INSERT INTO __twin.resources VALUES (?, ?, ?)", [key, kind, json.dumps(body)])

    @staticmethod
    def forget(cur: duckdb.DuckDBPyConnection, key: str) -> None:
        cur.execute("DELETE FROM __twin.resources WHERE key = ?", [key])

    @staticmethod
    def forget_prefix(cur: duckdb.DuckDBPyConnection, prefix: str) -> None:
        cur.execute("DELETE FROM __twin.resources WHERE starts_with(key, ?)", [prefix])
