"""The twin's BigQuery: streaming-insert throughput and the monitoring read over 10,000 logged rows.

    .venv/bin/python benchmarks/bigquery_twin.py [--rows 10000] [--inserts 2000]

Serves edge/twin/bigquery on the twin's HTTP layer in a child process (as the twin runs: its own
process), on a free port over a fresh folder, and drives it with google-cloud-bigquery from this one:
  - insertAll rows/s with 1 and 16 concurrent clients, one row per request (a logging endpoint
    writes one row per prediction) and 500 rows per request; the same one-row requests over plain
    HTTP (the server's own capacity, without google-cloud-bigquery's per-call cost); and rows/s of
    `BigQueryBackend.insert_rows` called in process, as the Vertex twin's predict would log;
  - the window query edge's `monitor` sends (TIMESTAMP parameters, ORDER BY) over `--rows` rows of
    Vertex's request-response layout with one 784-pixel instance each, read to the last row (and
    its payloads parsed), plus a COUNTIF / JSON_VALUE / GROUP BY summary of the same rows.
Figures only: this machine is shared and noisy, so nothing here is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import bigquery  # noqa: E402

from edge.twin.bigquery import BigQueryBackend, bigquery_routes  # noqa: E402
from edge.twin.server import serve  # noqa: E402

PROJECT = "edge-twin"
SCHEMA = [
    bigquery.SchemaField("endpoint", "STRING"),
    bigquery.SchemaField("deployed_model_id", "STRING"),
    bigquery.SchemaField("logging_time", "TIMESTAMP"),
    bigquery.SchemaField("request_id", "NUMERIC"),
    bigquery.SchemaField("request_payload", "STRING", mode="REPEATED"),
    bigquery.SchemaField("response_payload", "STRING", mode="REPEATED"),
]


def client_for(url: str) -> bigquery.Client:
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": url})


def log_row(i: int, start: dt.datetime, rng: random.Random) -> dict:
    probabilities = [rng.random() for _ in range(10)]
    return {
        "endpoint": "projects/edge-twin/locations/us-central1/endpoints/1",
        "deployed_model_id": f"m{i % 2}",
        "logging_time": (start + dt.timedelta(milliseconds=i)).isoformat(),
        "request_id": i,
        "request_payload": [json.dumps([rng.randrange(256) for _ in range(784)])],
        "response_payload": [json.dumps(probabilities)],
    }


def insert_rate(url: str, table: str, clients: int, requests: int, batch: int) -> tuple[float, float]:
    """Rows per second that `clients` threads insert, `requests` requests in all of `batch` rows each,
    and the median request latency in milliseconds."""
    rng = random.Random(clients)
    start = dt.datetime.now(dt.timezone.utc)
    batches = [[log_row(i * batch + j, start, rng) for j in range(batch)] for i in range(requests)]
    own = [client_for(url) for _ in range(clients)]
    own[0].insert_rows_json(table, batches[0])  # connections warm
    errors: list = []
    latencies: list[float] = []

    def work(index: int):
        for rows in batches[index::clients]:
            began = time.perf_counter()
            errors.extend(own[index].insert_rows_json(table, rows))
            latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    assert not errors, errors[:3]
    return requests * batch / elapsed, statistics.median(latencies) * 1000


def raw_insert_rate(url: str, table: str, clients: int, requests: int) -> float:
    """One-row insertAll requests per second over plain keep-alive HTTP: what the server itself takes."""
    host, port = url.removeprefix("http://").split(":")
    project, dataset, name = table.split(".")
    path = f"/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{name}/insertAll"
    body = json.dumps({"rows": [{"json": log_row(0, dt.datetime.now(dt.timezone.utc), random.Random(0))}]})

    def work(count: int):
        connection = http.client.HTTPConnection(host, int(port))
        for _ in range(count):
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            assert answer.status == 200 and b"insertErrors" not in answer.read()
        connection.close()

    threads = [threading.Thread(target=work, args=(requests // clients,)) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return requests // clients * clients / (time.perf_counter() - began)


def in_process_rate(rows: int) -> float:
    """Rows per second that `BigQueryBackend.insert_rows` takes one at a time (the Vertex twin's path)."""
    with tempfile.TemporaryDirectory() as home:
        backend = BigQueryBackend(Path(home)).start()
        backend.ensure_table(PROJECT, "bench", "log", [f.to_api_repr() for f in SCHEMA])
        rng, start = random.Random(0), dt.datetime.now(dt.timezone.utc)
        batch = [log_row(i, start, rng) for i in range(rows)]
        began = time.perf_counter()
        for row in batch:
            backend.insert_rows(PROJECT, "bench", "log", [row])
        rate = rows / (time.perf_counter() - began)
        backend.stop()
    return rate


def fill(client: bigquery.Client, table: str, rows: int, start: dt.datetime) -> None:
    rng = random.Random(0)
    for first in range(0, rows, 500):
        chunk = [log_row(i, start, rng) for i in range(first, min(rows, first + 500))]
        assert client.insert_rows_json(table, chunk) == []


def window_read(
    client: bigquery.Client, table: str, since: dt.datetime, until: dt.datetime
) -> tuple[int, float, float]:
    """Rows read, seconds to run the query and read every row, seconds more to parse their payloads."""
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
    began = time.perf_counter()
    rows = list(client.query(sql, job_config=config).result())
    read = time.perf_counter() - began
    pixels = [json.loads(row["request_payload"][0]) for row in rows]
    return len(pixels), read, time.perf_counter() - began - read


def summary_query(client: bigquery.Client, table: str) -> float:
    sql = (
        "SELECT deployed_model_id, COUNT(*) AS n, "
        "COUNTIF(CAST(JSON_VALUE(response_payload[OFFSET(0)], '$[0]') AS FLOAT64) > 0.5) AS confident "
        f"FROM `{table}` GROUP BY deployed_model_id"
    )
    began = time.perf_counter()
    list(client.query_and_wait(sql))
    return time.perf_counter() - began


def serve_forever(home: str) -> None:
    """The child process: serve the BigQuery twin, print its URL, stop when stdin closes."""
    backend = BigQueryBackend(Path(home)).start()
    with serve(bigquery_routes(backend), name="bigquery") as server:
        print(server.url, flush=True)
        sys.stdin.read()
    backend.stop()


def measure(url: str, args: argparse.Namespace) -> None:
    client = client_for(url)
    client.create_dataset("bench")
    for name in ("inserts", "logs"):
        client.create_table(bigquery.Table(f"{PROJECT}.bench.{name}", schema=SCHEMA))
    inserts, logs = f"{PROJECT}.bench.inserts", f"{PROJECT}.bench.logs"
    print(f"insertAll of rows in Vertex's layout, one 784-pixel instance each ({args.inserts} one-row requests):")
    for clients, requests, batch in ((1, args.inserts, 1), (16, args.inserts, 1), (1, 32, 500), (16, 32, 500)):
        rate, p50 = insert_rate(url, inserts, clients, requests, batch)
        print(f"  {clients:>2} client(s), {batch:>3} row(s)/request: {rate:7.0f} rows/s, p50 {p50:6.1f} ms/request")
    for clients in (1, 16):
        rate = raw_insert_rate(url, inserts, clients, args.inserts)
        print(f"  {clients:>2} client(s), raw HTTP (no google client), 1 row/request: {rate:7.0f} rows/s")
    print(f"  in process, BigQueryBackend.insert_rows, 1 row/call: {in_process_rate(args.inserts):7.0f} rows/s")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    fill(client, logs, args.rows, start)
    for attempt in (1, 2):
        count, read, parse = window_read(client, logs, start, start + dt.timedelta(milliseconds=args.rows))
        print(
            f"window query (run {attempt}): {count} rows read to the last one in {read:.2f} s, "
            f"their payloads parsed (json) in {parse:.2f} s more"
        )
    print(f"COUNTIF / JSON_VALUE / GROUP BY over {args.rows} rows: {summary_query(client, logs):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="logged rows the window query reads")
    parser.add_argument("--inserts", type=int, default=2000, help="one-row insert requests per measurement")
    parser.add_argument("--serve", metavar="HOME", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        serve_forever(args.serve)
        return
    with tempfile.TemporaryDirectory() as home:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", home], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            measure(child.stdout.readline().strip(), args)
        finally:
            child.stdin.close()
            child.wait(60)


if __name__ == "__main__":
    main()
