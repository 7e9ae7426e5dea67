"""The logged requests of a time window, read from the request log table with google-cloud-bigquery (the same
query on both targets). The query filters on logging_time, the column Terraform partitions the table by on
gcp, so BigQuery reads the window's partitions only, never the table's history.

A logged row whose payloads are not JSON, or whose predictions do not match its instances one for one, is
counted as malformed and skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from edge.errors import EdgeError

MAX_ROWS = 200_000  # the latest rows of a window that are read (about 600 MB of requests of ~800 numbers each)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class WindowError(EdgeError):
    """The window cannot be read: a bad --since/--until, or no request log table."""


@dataclass
class Requests:
    """The answered requests of one deployed model in a window, one entry per instance, oldest first."""

    instances: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    times: list[int] = field(default_factory=list)  # logging_time, microseconds since the epoch
    rows: int = 0


@dataclass
class Window:
    since: dt.datetime
    until: dt.datetime
    table: str  # project.dataset.table
    by_deployed_model: dict[str, Requests] = field(default_factory=dict)
    rows: int = 0  # rows read
    malformed: int = 0  # rows skipped: payloads not JSON, or not one prediction per instance
    truncated: bool = False  # more than MAX_ROWS rows: the latest MAX_ROWS were read


def parse_time(text: str, now: dt.datetime, option: str) -> dt.datetime:
    """`--until`-style time: an ISO 8601 time (UTC when it has no zone), or "now"."""
    if text in ("", "now"):
        return now
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"{option} must be a time such as 2025-01-31T12:00:00Z, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def parse_window(since: str, until: str | None, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """(start, end) of `--since` (a duration before `--until` such as 30m, 24h, 7d, or a time) and `--until`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    end = parse_time(until or "now", now, "--until")
    match = _DURATION.fullmatch(since.strip())
    if match:
        start = end - dt.timedelta(**{_UNITS[match[2]]: float(match[1])})
    else:
        try:
            start = parse_time(since, now, "--since")
        except WindowError:
            raise WindowError(f"--since must be a duration such as 30m, 24h, 7d or a time, got {since!r}") from None
    if start >= end:
        raise WindowError(f"the window is empty: --since {start.isoformat()} is not before --until {end.isoformat()}")
    return start, end


def read_window(client, table: str, since: dt.datetime, until: dt.datetime) -> Window:
    """The rows logged in [since, until) in `table` (project.dataset.table), grouped by deployed model."""
    import orjson
    from google.api_core import exceptions
    from google.cloud import bigquery

    sql = (
        "SELECT deployed_model_id, UNIX_MICROS(logging_time) AS micros, request_payload, response_payload "
        f"FROM `{table}` WHERE logging_time >= @since AND logging_time < @until "
        f"ORDER BY logging_time DESC LIMIT {MAX_ROWS + 1}"
    )
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
            bigquery.ScalarQueryParameter("until", "TIMESTAMP", until),
        ]
    )
    try:
        rows = list(client.query(sql, job_config=config).result(page_size=20_000))
    except exceptions.NotFound as exc:
        raise WindowError(f"no request log table bq://{table} ({_first_line(exc)})") from None
    except exceptions.GoogleAPICallError as exc:
        raise WindowError(f"the request log bq://{table} could not be read: {_first_line(exc)}") from None
    window = Window(since, until, table, rows=min(len(rows), MAX_ROWS), truncated=len(rows) > MAX_ROWS)
    for row in reversed(rows[:MAX_ROWS]):
        try:
            instances = [orjson.loads(text) for text in row["request_payload"]]
            predictions = [orjson.loads(text) for text in row["response_payload"]]
        except (orjson.JSONDecodeError, TypeError):
            window.malformed += 1
            continue
        if not instances or len(instances) != len(predictions) or not row["deployed_model_id"]:
            window.malformed += 1
            continue
        group = window.by_deployed_model.setdefault(str(row["deployed_model_id"]), Requests())
        group.instances.extend(instances)
        group.predictions.extend(predictions)
        group.times.extend([row["micros"]] * len(instances))
        group.rows += 1
    return window


def from_micros(micros: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(micros / 1e6, dt.timezone.utc)


def _first_line(exc) -> str:
    return str(getattr(exc, "message", exc)).strip().splitlines()[0]
