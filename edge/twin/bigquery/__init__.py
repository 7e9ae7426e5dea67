"""The twin's BigQuery: the part of the BigQuery v2 REST API that edge and google-cloud-bigquery use
(datasets, tables, tabledata.insertAll / list, query jobs), backed by DuckDB with the rows persisted
under the twin's folder, and standard SQL translated by sqlglot (edge/twin/bigquery/sql.py says
which SQL is known to work and which is refused).

Mounting: `bigquery_routes(BigQueryBackend(home / "bigquery").start())` is a route table for
edge/twin/server.py; google-cloud-bigquery reaches it with
`bigquery.Client(project=..., credentials=AnonymousCredentials(), client_options={"api_endpoint": url})`
(it appends `/bigquery/v2/...`; `BIGQUERY_EMULATOR_HOST=url` does the same without client options).

Vertex AI's request-response logging table (`PredictRequestResponseLoggingConfig`, default table
`request_response_logging`, schema version "v1" by default): one row per logged request with
    endpoint STRING, deployed_model_id STRING, logging_time TIMESTAMP, request_id NUMERIC,
    request_payload STRING REPEATED (one JSON text per instance),
    response_payload STRING REPEATED (one JSON text per prediction);
schema "v2" adds model, model_version, api_method STRING and full_request, full_response,
metadata, otel_log JSON (generative models). Sources:
https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging and
https://cloud.google.com/python/docs/reference/aiplatform/latest/google.cloud.aiplatform_v1beta1.types.PredictRequestResponseLoggingConfig
`REQUEST_RESPONSE_LOGGING_FIELDS` is that v1 schema; `BigQueryBackend.insert_rows` streams rows
from inside the twin (no HTTP), as the Vertex twin's predict does.
"""

from edge.twin.bigquery.backend import BigQueryBackend
from edge.twin.bigquery.routes import bigquery_routes
from edge.twin.bigquery.schema import REQUEST_RESPONSE_LOGGING_FIELDS

__all__ = ["REQUEST_RESPONSE_LOGGING_FIELDS", "BigQueryBackend", "bigquery_routes"]
