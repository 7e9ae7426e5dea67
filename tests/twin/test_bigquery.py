"""The twin's BigQuery, driven through the real google-cloud-bigquery client (no mocks)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import random
import threading
import uuid

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from edge.twin.bigquery import REQUEST_RESPONSE_LOGGING_FIELDS, BigQueryBackend, bigquery_routes
from edge.twin.server import serve

PROJECT = "edge-twin"
UTC = dt.timezone.utc
LOG_SCHEMA = [  # Vertex AI's request-response logging table (schema v1), see edge/twin/bigquery/__init__.py
    bigquery.SchemaField("endpoint", "STRING"),
    bigquery.SchemaField("deployed_model_id", "STRING"),
    bigquery.SchemaField("logging_time", "TIMESTAMP"),
    bigquery.SchemaField("request_id", "NUMERIC"),
    bigquery.SchemaField("request_payload", "STRING", mode="REPEATED"),
    bigquery.SchemaField("response_payload", "STRING", mode="REPEATED"),
]


def client_for(url: str) -> bigquery.Client:
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": url})


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """A started BigQueryBackend over a fresh folder."""
    backend = BigQueryBackend(tmp_path_factory.mktemp("bigquery")).start()
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def bigquery_twin(backend):
    """The BigQuery routes served on a free 127.0.0.1 port by the twin's HTTP layer."""
    with serve(bigquery_routes(backend), name="bigquery") as server:
        yield server


@pytest.fixture(scope="module")
def client(bigquery_twin) -> bigquery.Client:
    """A google-cloud-bigquery client pointed at the twin."""
    return client_for(bigquery_twin.url)


@pytest.fixture(scope="module")
def sql_client(client) -> bigquery.Client:
    """The twin's client; with EDGE_TEST_GCP=1, real BigQuery's (project from GOOGLE_CLOUD_PROJECT), so the
    expectations of the tests that use it are checked against BigQuery itself."""
    if os.environ.get("EDGE_TEST_GCP") == "1":
        return bigquery.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    return client


@pytest.fixture
def dataset(client) -> str:
    """A fresh dataset, `project.dataset`, deleted with its tables afterwards."""
    name = f"ds_{uuid.uuid4().hex[:10]}"
    client.create_dataset(name)
    yield f"{PROJECT}.{name}"
    client.delete_dataset(name, delete_contents=True, not_found_ok=True)


def log_rows(n: int, start: dt.datetime, models=("m1", "m2"), seed: int = 0) -> list[dict]:
    """Rows as Vertex logs them: one instance of 784 pixels per request, its prediction as JSON text."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.randrange(10)
        rows.append(
            {
                "endpoint": "projects/p/locations/us-central1/endpoints/123",
                "deployed_model_id": models[i % len(models)],
                "logging_time": (start + dt.timedelta(seconds=i)).isoformat(),
                "request_id": 1000 + i,
                "request_payload": [json.dumps([rng.randrange(256) for _ in range(784)])],
                "response_payload": [json.dumps({"label": label, "confidence": rng.random(), "tags": ["x"]})],
            }
        )
    return rows


def make_log_table(client, dataset: str, rows: list[dict], name: str = "request_response_logging") -> str:
    table = f"{dataset}.{name}"
    client.create_table(bigquery.Table(table, schema=LOG_SCHEMA))
    for start in range(0, len(rows), 500):
        assert client.insert_rows_json(table, rows[start : start + 500]) == []
    return table


def rows_of(iterator) -> list[dict]:
    return [dict(row) for row in iterator]


# ---------------------------------------------------------------------------------------- datasets


def test_a_dataset_round_trips_its_description_labels_and_expiration(client):
    created = bigquery.Dataset(f"{PROJECT}.described")
    created.description, created.labels, created.default_table_expiration_ms = "logs", {"env": "test"}, 3_600_000
    client.create_dataset(created)
    got = client.get_dataset("described")
    assert (got.description, got.labels, got.default_table_expiration_ms) == ("logs", {"env": "test"}, 3_600_000)
    assert got.location == "US" and got.created is not None and got.etag
    client.delete_dataset("described")


def test_a_dataset_update_changes_only_the_fields_it_names(client, dataset):
    got = client.get_dataset(dataset)
    got.description, got.labels = "new", {"team": "ml"}
    updated = client.update_dataset(got, ["description", "labels"])
    assert (updated.description, updated.labels) == ("new", {"team": "ml"})
    assert updated.etag != got.etag


def test_datasets_are_listed_in_pages(client):
    names = [f"listed_{i}" for i in range(3)]
    for name in names:
        client.create_dataset(name)
    listed = [d.dataset_id for d in client.list_datasets(page_size=2)]
    assert set(names) <= set(listed) and len(listed) == len(set(listed))
    for name in names:
        client.delete_dataset(name)


def test_creating_a_dataset_twice_is_a_conflict(client, dataset):
    with pytest.raises(exceptions.Conflict):
        client.create_dataset(dataset)


def test_a_missing_dataset_is_not_found(client):
    with pytest.raises(exceptions.NotFound):
        client.get_dataset("no_such_dataset")


def test_a_dataset_with_tables_is_deleted_only_with_its_contents(client, dataset):
    client.create_table(bigquery.Table(f"{dataset}.t", schema=LOG_SCHEMA))
    with pytest.raises(exceptions.BadRequest, match="still in use"):
        client.delete_dataset(dataset)
    client.delete_dataset(dataset, delete_contents=True)
    with pytest.raises(exceptions.NotFound):
        client.get_table(f"{dataset}.t")


# ------------------------------------------------------------------------------------------ tables


def test_a_table_round_trips_its_nested_schema_partitioning_and_expiration(client, dataset):
    schema = [
        bigquery.SchemaField("id", "INT64", mode="REQUIRED", description="the key"),
        bigquery.SchemaField(
            "items",
            "RECORD",
            mode="REPEATED",
            fields=[bigquery.SchemaField("name", "STRING"), bigquery.SchemaField("scores", "FLOAT64", mode="REPEATED")],
        ),
        bigquery.SchemaField("at", "TIMESTAMP"),
    ]
    table = bigquery.Table(f"{dataset}.nested", schema=schema)
    table.time_partitioning = bigquery.TimePartitioning(field="at", expiration_ms=86_400_000)
    table.expires = dt.datetime.now(UTC) + dt.timedelta(days=1)
    table.labels = {"kind": "log"}
    client.create_table(table)
    got = client.get_table(f"{dataset}.nested")
    assert [(f.name, f.field_type, f.mode) for f in got.schema] == [
        ("id", "INTEGER", "REQUIRED"),
        ("items", "RECORD", "REPEATED"),
        ("at", "TIMESTAMP", "NULLABLE"),
    ]
    assert got.schema[0].description == "the key"
    assert [(f.name, f.field_type, f.mode) for f in got.schema[1].fields] == [
        ("name", "STRING", "NULLABLE"),
        ("scores", "FLOAT", "REPEATED"),
    ]
    assert (got.time_partitioning.field, got.time_partitioning.expiration_ms) == ("at", 86_400_000)
    assert abs((got.expires - table.expires).total_seconds()) < 1 and got.labels == {"kind": "log"}
    assert got.num_rows == 0 and got.created is not None


def test_tables_are_listed(client, dataset):
    for name in ("b", "a"):
        client.create_table(bigquery.Table(f"{dataset}.{name}", schema=LOG_SCHEMA))
    assert [t.table_id for t in client.list_tables(dataset)] == ["a", "b"]


def test_a_table_gains_a_column_by_update(client, dataset):
    table = client.create_table(bigquery.Table(f"{dataset}.grows", schema=LOG_SCHEMA))
    client.insert_rows_json(table, [{"endpoint": "before"}])
    table.schema = [*LOG_SCHEMA, bigquery.SchemaField("latency_ms", "FLOAT")]
    client.update_table(table, ["schema"])
    assert client.insert_rows_json(table, [{"endpoint": "after", "latency_ms": 1.5}]) == []
    rows = rows_of(client.list_rows(f"{dataset}.grows"))
    assert [(r["endpoint"], r["latency_ms"]) for r in rows] == [("before", None), ("after", 1.5)]


def test_an_update_with_a_stale_etag_fails_its_precondition(client, dataset):
    table = client.create_table(bigquery.Table(f"{dataset}.t", schema=LOG_SCHEMA))
    client.update_table(client.get_table(table), [])  # someone else changes it
    table.description = "mine"
    with pytest.raises(exceptions.PreconditionFailed):
        client.update_table(table, ["description"])


def test_a_table_created_twice_is_a_conflict_and_a_deleted_one_is_not_found(client, dataset):
    client.create_table(bigquery.Table(f"{dataset}.t", schema=LOG_SCHEMA))
    with pytest.raises(exceptions.Conflict):
        client.create_table(bigquery.Table(f"{dataset}.t", schema=LOG_SCHEMA))
    client.delete_table(f"{dataset}.t")
    with pytest.raises(exceptions.NotFound):
        client.get_table(f"{dataset}.t")


def test_an_invalid_schema_is_a_bad_request(client, dataset):
    with pytest.raises(exceptions.BadRequest, match="Invalid field type"):
        client.create_table(bigquery.Table(f"{dataset}.t", schema=[bigquery.SchemaField("x", "NOPE")]))


# -------------------------------------------------------------------------------------- tabledata


def test_inserted_rows_are_listed_back_in_pages(client, dataset):
    rows = log_rows(25, dt.datetime(2024, 1, 1, tzinfo=UTC))
    table = make_log_table(client, dataset, rows)
    pages = list(client.list_rows(table, page_size=10).pages)
    assert [p.num_items for p in pages] == [10, 10, 5]
    listed = [dict(r) for p in pages for r in p]
    assert [r["request_id"] for r in listed] == [decimal.Decimal(1000 + i) for i in range(25)]
    assert listed[3]["request_payload"] == rows[3]["request_payload"]
    assert listed[3]["logging_time"] == dt.datetime.fromisoformat(rows[3]["logging_time"])
    assert [r["request_id"] for r in client.list_rows(table, start_index=20)] == [1020 + i for i in range(5)]
    selected = client.list_rows(table, selected_fields=[LOG_SCHEMA[1]], max_results=2)
    assert rows_of(selected) == [{"deployed_model_id": "m1"}, {"deployed_model_id": "m2"}]


def test_every_type_round_trips_through_insert_and_list(client, dataset):
    schema = [
        bigquery.SchemaField("s", "STRING"),
        bigquery.SchemaField("b", "BYTES"),
        bigquery.SchemaField("i", "INTEGER"),
        bigquery.SchemaField("f", "FLOAT"),
        bigquery.SchemaField("n", "NUMERIC"),
        bigquery.SchemaField("ok", "BOOLEAN"),
        bigquery.SchemaField("ts", "TIMESTAMP"),
        bigquery.SchemaField("d", "DATE"),
        bigquery.SchemaField("t", "TIME"),
        bigquery.SchemaField("dtm", "DATETIME"),
        bigquery.SchemaField("j", "JSON"),
        bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
        bigquery.SchemaField("rec", "RECORD", fields=[bigquery.SchemaField("x", "INTEGER"), LOG_SCHEMA[4]]),
    ]
    table = client.create_table(bigquery.Table(f"{dataset}.types", schema=schema))
    row = {
        "s": "é",
        "b": b"\x00\xff",
        "i": -(2**63),
        "f": 0.1,
        "n": decimal.Decimal("123.456789"),
        "ok": True,
        "ts": dt.datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=UTC),
        "d": dt.date(2024, 2, 29),
        "t": dt.time(23, 59, 59, 5),
        "dtm": dt.datetime(2024, 1, 1, 8, 30),
        "j": {"a": [1, 2.5, None, "x"], "b": {"c": True}},
        "tags": ["a", "b"],
        "rec": {"x": 7, "request_payload": ["[1]"]},
    }
    assert client.insert_rows(table, [row, {"tags": []}]) == []
    got = rows_of(client.list_rows(table))
    assert got[0] == row
    assert got[1] == {**{k: None for k in row}, "tags": []}


def test_bad_rows_are_reported_per_row_and_no_row_is_inserted(client, dataset):
    table = make_log_table(client, dataset, [])
    errors = client.insert_rows_json(
        table, [{"endpoint": "ok"}, {"request_id": "not a number"}, {"logging_time": "yesterday"}, {"nope": 1}]
    )
    by_index = {e["index"]: e["errors"][0] for e in errors}
    assert by_index[0]["reason"] == "stopped"
    assert (by_index[1]["reason"], by_index[1]["location"]) == ("invalid", "request_id")
    assert (by_index[2]["reason"], by_index[2]["location"]) == ("invalid", "logging_time")
    assert by_index[3]["message"] == "no such field: nope."
    assert client.get_table(table).num_rows == 0


def test_skip_invalid_rows_inserts_the_valid_ones(client, dataset):
    table = make_log_table(client, dataset, [])
    errors = client.insert_rows_json(
        table, [{"endpoint": "ok"}, {"request_payload": "not a list"}], skip_invalid_rows=True
    )
    assert [e["index"] for e in errors] == [1]
    assert rows_of(client.list_rows(table))[0]["endpoint"] == "ok"


def test_unknown_values_are_dropped_when_asked(client, dataset):
    table = make_log_table(client, dataset, [])
    assert client.insert_rows_json(table, [{"endpoint": "e", "extra": 1}], ignore_unknown_values=True) == []
    assert rows_of(client.list_rows(table))[0]["endpoint"] == "e"


def test_a_missing_required_field_is_refused(client, dataset):
    table = client.create_table(
        bigquery.Table(f"{dataset}.t", schema=[bigquery.SchemaField("x", "STRING", "REQUIRED")])
    )
    [error] = client.insert_rows_json(table, [{}])
    assert error["errors"][0]["message"] == "Missing required field: x."


def test_a_retried_insert_id_is_inserted_once(client, dataset):
    table = make_log_table(client, dataset, [])
    for _ in range(3):
        assert client.insert_rows_json(table, [{"endpoint": "once"}, {"endpoint": "twice"}], row_ids=["a", "b"]) == []
    assert client.get_table(table).num_rows == 2


def test_inserting_into_a_missing_table_is_not_found(client, dataset):
    with pytest.raises(exceptions.NotFound):
        client.insert_rows_json(f"{dataset}.missing", [{"x": 1}])


def test_rows_streamed_from_inside_the_twin_are_read_by_the_client(backend, client, dataset):
    project, name = dataset.split(".")
    backend.ensure_table(project, name, "request_response_logging", REQUEST_RESPONSE_LOGGING_FIELDS)
    backend.ensure_table(project, name, "request_response_logging", REQUEST_RESPONSE_LOGGING_FIELDS)  # idempotent
    rows = log_rows(3, dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert backend.insert_rows(project, name, "request_response_logging", [*rows, {"nope": 1}])[0]["index"] == 3
    table = client.get_table(f"{dataset}.request_response_logging")
    assert [f.name for f in table.schema] == [f.name for f in LOG_SCHEMA] and table.num_rows == 3


def test_concurrent_inserts_from_16_threads_lose_no_row(bigquery_twin, client, dataset):
    table = make_log_table(client, dataset, [])
    per_thread, failures = 50, []

    def insert(thread: int):
        own = client_for(bigquery_twin.url)
        for i in range(per_thread):
            errors = own.insert_rows_json(table, [{"endpoint": f"{thread}", "request_id": thread * 1000 + i}])
            failures.extend(errors)

    threads = [threading.Thread(target=insert, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    [[count, distinct]] = client.query_and_wait(f"SELECT COUNT(*), COUNT(DISTINCT request_id) FROM `{table}`")
    assert count == distinct == 16 * per_thread


# ----------------------------------------------------------------------------------------- queries


def test_the_log_window_query_reads_the_rows_between_its_timestamp_parameters(client, dataset):
    start = dt.datetime(2024, 5, 1, tzinfo=UTC)
    rows = log_rows(100, start)
    table = make_log_table(client, dataset, list(reversed(rows)))
    since, until = start + dt.timedelta(seconds=10), start + dt.timedelta(seconds=70)
    sql = (
        "SELECT endpoint, deployed_model_id, logging_time, request_id, request_payload, response_payload "
        f"FROM `{table}` WHERE logging_time >= @since AND logging_time < @until ORDER BY logging_time"
    )
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
            bigquery.ScalarQueryParameter("until", "TIMESTAMP", until),
        ]
    )
    job = client.query(sql, job_config=config)
    got = rows_of(job.result(page_size=25))
    assert job.state == "DONE" and job.errors is None
    assert [r["request_id"] for r in got] == [1000 + i for i in range(10, 70)]
    assert got[0]["request_payload"] == rows[10]["request_payload"]
    assert got[0]["logging_time"] == since


def test_countif_over_json_value_matches_python(client, dataset):
    rows = log_rows(300, dt.datetime(2024, 5, 1, tzinfo=UTC), models=("m1", "m2", "m3"), seed=7)
    rows[5]["response_payload"] = [json.dumps({"label": None})]  # JSON null: JSON_VALUE is NULL
    rows[6]["response_payload"] = [json.dumps({"label": [3]})]  # not a scalar: JSON_VALUE is NULL
    rows[7]["response_payload"] = [json.dumps({"label": "3"})]  # a string "3" equals '3' too
    rows[8]["response_payload"] = ["{not json"]  # malformed: JSON_VALUE is NULL, the query does not fail
    table = make_log_table(client, dataset, rows)
    sql = f"""
        SELECT deployed_model_id, COUNT(*) AS n,
               COUNTIF(JSON_VALUE(response_payload[OFFSET(0)], '$.label') = '3') AS threes,
               COUNTIF(JSON_VALUE(response_payload[OFFSET(0)], '$.label') IS NULL) AS no_label,
               COUNTIF(CAST(JSON_VALUE(response_payload[OFFSET(0)], '$.confidence') AS FLOAT64) > 0.5) AS sure
        FROM `{table}` GROUP BY deployed_model_id ORDER BY deployed_model_id"""
    expected = {}
    for row in rows:
        try:
            predicted = json.loads(row["response_payload"][0])
        except ValueError:
            predicted = {}
        label = predicted.get("label")
        scalar = None if label is None or isinstance(label, list) else str(label)
        counts = expected.setdefault(row["deployed_model_id"], [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += scalar == "3"
        counts[2] += scalar is None
        counts[3] += predicted.get("confidence", 0) > 0.5
    got = {r["deployed_model_id"]: [r["n"], r["threes"], r["no_label"], r["sure"]] for r in client.query_and_wait(sql)}
    assert got == expected


def test_countif_over_json_value_of_a_json_column_matches_python(client, dataset):
    table = client.create_table(
        bigquery.Table(f"{dataset}.j", schema=[bigquery.SchemaField("m", "STRING"), bigquery.SchemaField("p", "JSON")])
    )
    rng = random.Random(3)
    rows = [{"m": rng.choice("ab"), "p": {"label": rng.choice([1, 2, "2", None, [2], {"v": 2}])}} for _ in range(200)]
    assert client.insert_rows(table, rows) == []
    sql = f"SELECT m, COUNTIF(JSON_VALUE(p, '$.label') = '2') AS twos FROM `{dataset}.j` GROUP BY m"
    expected = {"a": 0, "b": 0}
    for row in rows:
        label = row["p"]["label"]
        expected[row["m"]] += label in (2, "2")
    assert {r["m"]: r["twos"] for r in client.query_and_wait(sql)} == expected


def test_query_results_are_paged_through_get_query_results(client, dataset):
    table = make_log_table(client, dataset, log_rows(120, dt.datetime(2024, 1, 1, tzinfo=UTC)))
    result = client.query_and_wait(f"SELECT request_id FROM `{table}` ORDER BY request_id", page_size=50)
    pages = [[row["request_id"] for row in page] for page in result.pages]
    assert [len(p) for p in pages] == [50, 50, 20] and result.total_rows == 120
    assert [r for p in pages for r in p] == [1000 + i for i in range(120)]


def test_query_parameters_of_every_scalar_type_and_positional_ones(client):
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter(None, "STRING", "x"),
            bigquery.ScalarQueryParameter(None, "INT64", 5),
            bigquery.ScalarQueryParameter(None, "FLOAT64", 0.25),
            bigquery.ScalarQueryParameter(None, "BOOL", True),
            bigquery.ScalarQueryParameter(None, "TIMESTAMP", dt.datetime(2024, 1, 1, 12, tzinfo=UTC)),
            bigquery.ScalarQueryParameter(None, "DATE", dt.date(2024, 1, 2)),
            bigquery.ArrayQueryParameter(None, "INT64", [1, 5]),
        ]
    )
    [row] = client.query_and_wait("SELECT ?, ? + 1, ? * 2, NOT ?, ?, ?, 5 IN UNNEST(?)", job_config=config)
    assert list(row.values()) == [
        "x",
        6,
        0.5,
        False,
        dt.datetime(2024, 1, 1, 12, tzinfo=UTC),
        dt.date(2024, 1, 2),
        True,
    ]


def test_result_columns_have_bigquery_names_and_types(client):
    result = client.query_and_wait(
        "SELECT 1 AS i, 1.5, 'a' AS s, TRUE AS b, CURRENT_TIMESTAMP() AS ts, DATE '2024-01-01' AS d, "
        "[1, 2] AS arr, STRUCT(1 AS x, 'y' AS y) AS rec, CAST('1.5' AS NUMERIC) AS n, COUNT(*)"
    )
    assert [(f.name, f.field_type, f.mode) for f in result.schema] == [
        ("i", "INTEGER", "NULLABLE"),
        ("f0_", "FLOAT", "NULLABLE"),
        ("s", "STRING", "NULLABLE"),
        ("b", "BOOLEAN", "NULLABLE"),
        ("ts", "TIMESTAMP", "NULLABLE"),
        ("d", "DATE", "NULLABLE"),
        ("arr", "INTEGER", "REPEATED"),
        ("rec", "RECORD", "NULLABLE"),
        ("n", "NUMERIC", "NULLABLE"),
        ("f1_", "INTEGER", "NULLABLE"),
    ]
    [row] = result
    assert (row["rec"], row["n"], row["arr"]) == ({"x": 1, "y": "y"}, decimal.Decimal("1.5"), [1, 2])


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT CAST(2.5 AS INT64), CAST(-2.5 AS INT64), CAST(3.5 AS INT64)", [3, -3, 4]),
        ("SELECT DIV(-7, 2), MOD(-7, 2), 7 / 2, SAFE_DIVIDE(1, 0)", [-3, -1, 3.5, None]),
        ("SELECT 0.1 + 0.2 = 0.3, ROUND(2.5), ROUND(-2.5)", [False, 3.0, -3.0]),
        ("""SELECT JSON_VALUE('{"a": {"b": 1}}', '$.a'), JSON_VALUE('{"a": "x"}', '$.a')""", [None, "x"]),
        ("""SELECT JSON_VALUE('{"a": true}', '$.a'), JSON_EXTRACT_SCALAR('{"a": [1, 2]}', '$.a[1]')""", ["true", "2"]),
        ("""SELECT JSON_VALUE('not json', '$.a'), JSON_VALUE('{"a": {"b": "x"}}', '$.a[0].b')""", [None, None]),
        ("SELECT [1, 2, 3][SAFE_OFFSET(5)], [1, 2, 3][SAFE_OFFSET(-1)], [1, 2, 3][ORDINAL(3)]", [None, None, 3]),
        ("SELECT GREATEST(1, NULL), CONCAT('a', NULL), ARRAY_LENGTH([1, 2]), 'b' > 'a'", [None, None, 2, True]),
        ("SELECT REGEXP_EXTRACT('abc123', r'c([0-9])'), SUBSTR('abcdef', -2), STRPOS('abc', 'z')", ["1", "ef", 0]),
        (
            "SELECT EXTRACT(HOUR FROM TIMESTAMP '2024-01-01 10:00:00+02'), "
            "UNIX_SECONDS(TIMESTAMP '1970-01-01 00:01:00')",
            [8, 60],
        ),
        ("SELECT TIMESTAMP_TRUNC(TIMESTAMP '2024-01-03 10:30:00', HOUR)", [dt.datetime(2024, 1, 3, 10, tzinfo=UTC)]),
        ("SELECT COUNTIF(x > 1), LOGICAL_AND(x > 0) FROM UNNEST([1, 2, 3, NULL]) AS x", [2, True]),
        (
            "SELECT DATE_ADD(DATE '2024-01-31', INTERVAL 1 MONTH), DATE(TIMESTAMP '2024-01-01 23:00:00-05')",
            [dt.date(2024, 2, 29), dt.date(2024, 1, 2)],
        ),
        (
            "SELECT STRING_AGG(x, ',' ORDER BY x DESC), ARRAY_AGG(x ORDER BY x) FROM UNNEST(['b', 'a', 'c']) AS x",
            ["c,b,a", ["a", "b", "c"]],
        ),
    ],
)
@pytest.mark.gcp
def test_sql_answers_as_bigquery_documents(sql_client, sql, expected):
    [row] = sql_client.query_and_wait(sql)
    assert list(row.values()) == expected


@pytest.mark.gcp
def test_nulls_sort_first_as_in_bigquery(sql_client):
    rows = sql_client.query_and_wait("SELECT x FROM UNNEST([2, NULL, 1]) AS x ORDER BY x")
    assert [row["x"] for row in rows] == [None, 1, 2]


@pytest.mark.gcp
def test_an_array_with_a_null_element_fails_as_in_bigquery(sql_client):
    with pytest.raises(exceptions.BadRequest, match="null element"):
        sql_client.query_and_wait("SELECT ARRAY(SELECT x FROM UNNEST([2, NULL, 1]) AS x)")


def test_a_syntax_error_is_a_bad_request_with_the_reason(client):
    with pytest.raises(exceptions.BadRequest, match=r"Syntax error.*\[1:"):
        client.query("SELECT FROM WHERE").result()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP(), SECOND)",
        "SELECT EXTRACT(DAYOFWEEK FROM CURRENT_DATE())",
        "SELECT SQRT(-1)",
        "SELECT NO_SUCH_FUNCTION(1)",
        "SELECT 1; SELECT 2",
        "CREATE TABLE x (a INT64)",
    ],
)
def test_sql_the_twin_cannot_answer_exactly_is_refused_not_answered(client, sql):
    with pytest.raises(exceptions.BadRequest) as raised:
        client.query_and_wait(sql)
    assert raised.value.errors[0]["reason"] == "invalidQuery"


@pytest.mark.gcp
def test_a_division_by_zero_fails_as_in_bigquery(sql_client):
    with pytest.raises(exceptions.BadRequest, match="[Dd]ivision by zero"):
        sql_client.query_and_wait("SELECT x / 0 FROM UNNEST([1]) AS x")


@pytest.mark.gcp
def test_an_out_of_range_offset_fails_as_in_bigquery(sql_client):
    with pytest.raises(exceptions.BadRequest, match="out of bounds"):
        sql_client.query_and_wait("SELECT [1, 2][OFFSET(2)]")


def test_legacy_sql_is_refused(client):
    with pytest.raises(exceptions.BadRequest, match="standard SQL"):
        client.query("SELECT 1", job_config=bigquery.QueryJobConfig(use_legacy_sql=True)).result()


def test_querying_a_missing_table_is_not_found(client, dataset):
    with pytest.raises(exceptions.NotFound):
        client.query(f"SELECT * FROM `{dataset}.missing`").result()


def test_an_unqualified_table_uses_the_default_dataset(client, dataset):
    make_log_table(client, dataset, log_rows(3, dt.datetime(2024, 1, 1, tzinfo=UTC)))
    config = bigquery.QueryJobConfig(default_dataset=dataset)
    [[count]] = client.query_and_wait("SELECT COUNT(*) FROM request_response_logging", job_config=config)
    assert count == 3


def test_a_dry_run_gives_the_schema_and_runs_nothing(client, dataset):
    table = make_log_table(client, dataset, [])
    config = bigquery.QueryJobConfig(dry_run=True)
    job = client.query(f"SELECT endpoint, COUNT(*) AS n FROM `{table}` GROUP BY endpoint", job_config=config)
    assert job.state == "DONE" and [f.name for f in job.schema] == ["endpoint", "n"]


def test_jobs_are_got_and_listed(client):
    job = client.query("SELECT 1")
    job.result()
    got = client.get_job(job.job_id)
    assert (got.state, got.query, got.job_type) == ("DONE", "SELECT 1", "query")
    assert job.job_id in [j.job_id for j in client.list_jobs(max_results=50)]


# ------------------------------------------------------------------------------------- persistence


def test_rows_datasets_and_jobs_survive_a_restart(tmp_path):
    rows = log_rows(30, dt.datetime(2024, 1, 1, tzinfo=UTC))
    backend = BigQueryBackend(tmp_path).start()
    with serve(bigquery_routes(backend), name="bigquery") as server:
        first = client_for(server.url)
        first.create_dataset("kept")
        table = make_log_table(first, f"{PROJECT}.kept", rows)
        job = first.query(f"SELECT COUNT(*) FROM `{table}`")
        job.result()
    backend.stop()

    backend = BigQueryBackend(tmp_path).start()
    with serve(bigquery_routes(backend), name="bigquery") as server:
        second = client_for(server.url)
        assert second.get_table(table).num_rows == 30
        listed = rows_of(second.list_rows(table))
        assert [r["request_payload"] for r in listed] == [r["request_payload"] for r in rows]
        assert second.get_job(job.job_id).state == "DONE"
        assert [list(r.values()) for r in second.get_job(job.job_id).result()] == [[30]]
    backend.stop()


def test_bytes_cells_are_base64(client, dataset):
    table = client.create_table(bigquery.Table(f"{dataset}.b", schema=[bigquery.SchemaField("b", "BYTES")]))
    assert client.insert_rows_json(table, [{"b": base64.b64encode(b"hi").decode()}]) == []
    assert rows_of(client.list_rows(table)) == [{"b": b"hi"}]


def test_reset_forgets_every_dataset_table_and_job(tmp_path):
    backend = BigQueryBackend(tmp_path).start()
    with serve(bigquery_routes(backend), name="bigquery") as server:
        client = client_for(server.url)
        client.create_dataset("gone")
        make_log_table(client, f"{PROJECT}.gone", log_rows(5, dt.datetime(2024, 1, 1, tzinfo=UTC)))
        client.query("SELECT 1").result()
        assert backend.reset() == {}
        assert list(client.list_datasets()) == [] and list(client.list_jobs()) == []
        client.create_dataset("gone")
        assert list(client.list_tables("gone")) == []
    backend.stop()
