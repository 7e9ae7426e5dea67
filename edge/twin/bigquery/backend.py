"""The twin's BigQuery: datasets, tables, streamed rows and query jobs of every project, in one DuckDB
file under the twin's folder (`home/bigquery.duckdb`), so rows survive a restart."""

from __future__ import annotations

from pathlib import Path

from edge.twin.bigquery.catalog import Catalog
from edge.twin.bigquery.jobs import Jobs
from edge.twin.bigquery.schema import quote
from edge.twin.bigquery.sql import MACROS
from edge.twin.bigquery.store import RESULTS, Database
from edge.twin.bigquery.tabledata import TableData


class BigQueryBackend:
    """`start()` opens the database and starts the row writer and query workers; `stop()` writes every
    buffered row and closes it; `reset()` forgets every dataset, table and job."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.db = Database(self.home / "bigquery.duckdb")
        self.catalog = Catalog(self.db)
        self.tabledata = TableData(self.db, self.catalog)
        self.jobs = Jobs(self.db, self.catalog, self.tabledata)

    def start(self) -> BigQueryBackend:
        self.db.open()
        with self.db.cursor() as cur:
            for macro in MACROS:
                cur.execute(macro)
        self.catalog.load()
        self.tabledata.start()
        self.jobs.start()
        return self

    def stop(self) -> None:
        if not self.db.is_open:
            return
        self.jobs.stop()
        self.tabledata.stop()
        self.catalog.save_statistics()
        self.db.close()

    def reset(self) -> dict:
        """Drops every dataset (with its tables) and forgets every job; the twin keeps serving."""
        self.jobs.stop()
        self.tabledata.stop()
        with self.catalog.lock:
            with self.db.transaction() as cur:
                for (schema,) in cur.execute(
                    "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = current_database() "
                    "AND schema_name NOT IN ('main', '__twin', 'information_schema', 'pg_catalog')"
                ).fetchall():
                    cur.execute(f"DROP SCHEMA {quote(schema)} CASCADE")
                cur.execute("DELETE FROM __twin.resources")
            with self.db.cursor() as cur:  # a transaction writes to one database only
                for (table,) in cur.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [RESULTS]
                ).fetchall():
                    cur.execute(f"DROP TABLE {RESULTS}.{quote(table)}")
            self.catalog.clear()
        self.jobs.forget_all()
        self.tabledata.start()
        self.jobs.start()
        return {}

    def insert_rows(self, project: str, dataset: str, table: str, rows: list[dict]) -> list[dict]:
        """Streams rows (JSON objects) into a table from inside the twin, as insertAll does but without
        HTTP: checked at once, written to DuckDB by the writer thread. Returns insertAll's insertErrors."""
        body = {"rows": [{"json": row} for row in rows], "skipInvalidRows": True}
        return self.tabledata.insert_all(project, dataset, table, body).get("insertErrors", [])

    def ensure_table(self, project: str, dataset: str, table: str, fields) -> None:
        """Makes sure the dataset and table exist (a table that exists keeps its schema), as Vertex does
        for a request-response logging destination."""
        with self.catalog.lock:
            if (project, dataset) not in self.catalog.projects_datasets():
                self.catalog.create_dataset(project, {"datasetReference": {"datasetId": dataset}})
            if not self.catalog.has_table(project, dataset, table):
                body = {"tableReference": {"tableId": table}, "schema": {"fields": [dict(f) for f in fields]}}
                self.catalog.create_table(project, dataset, body)

    def status(self) -> dict:
        tables = self.catalog.tables()
        return {"tables": len(tables), "rows": sum(t.rows + len(t.buffer) for t in tables)}
