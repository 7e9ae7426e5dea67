"""The endpoint's request-response logging (Vertex AI's `predictRequestResponseLoggingConfig`): each sampled
predict call becomes one row of a BigQuery table. edge sets it when it makes or finds the endpoint (`invoke
deploy`), from edge.yaml's `monitoring:` section, through the SDK and its own GAPIC client, on both targets.

On gcp Terraform makes the dataset and table (partitioned by logging_time) and sets the same config on the
endpoint it creates, so edge's update finds nothing to change; on the twin, the twin makes the table as Vertex
does when it is missing. The SDK's default sampling rate is 0: edge always passes one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge.config import ModelConfig

log = logging.getLogger(__name__)

UPDATE_MASK = "predict_request_response_logging_config"


@dataclass(frozen=True)
class RequestLogging:
    """What an endpoint's logging config says: on or off, the share logged, and the table."""

    enabled: bool
    sampling_rate: float
    table: str  # bq://project.dataset.table ("" when none is set)

    @property
    def logs(self) -> bool:
        return self.enabled and self.sampling_rate > 0


def destination(project_id: str, model: ModelConfig) -> str:
    """The model's request log table, `bq://<project>.<dataset>.<table>` (edge.yaml's monitoring section)."""
    return f"bq://{project_id}.{model.monitoring.dataset}.{model.monitoring.table_for(model.name)}"


def create_options(project_id: str, model: ModelConfig) -> dict:
    """`Endpoint.create` arguments that make a new endpoint log its requests as edge.yaml says."""
    rate = model.monitoring.sampling_rate
    if rate <= 0:
        return {}
    return {
        "enable_request_response_logging": True,
        "request_response_logging_sampling_rate": rate,
        "request_response_logging_bq_destination_table": destination(project_id, model),
    }


def read(endpoint) -> RequestLogging:
    """The logging config of an endpoint: the SDK's `Endpoint` (as last fetched) or the GAPIC `Endpoint` message."""
    config = getattr(endpoint, "gca_resource", endpoint).predict_request_response_logging_config
    return RequestLogging(bool(config.enabled), float(config.sampling_rate), config.bigquery_destination.output_uri)


def ensure(endpoint, project_id: str, model: ModelConfig) -> bool:
    """Gives the endpoint the logging config of edge.yaml unless it has it already; True if it changed.
    The SDK's `Endpoint.update` does not take this field, so the update goes through the SDK's GAPIC client."""
    from google.cloud.aiplatform.compat.types import endpoint as gca_endpoint
    from google.cloud.aiplatform.compat.types import io as gca_io
    from google.protobuf import field_mask_pb2

    rate = model.monitoring.sampling_rate
    wanted = RequestLogging(rate > 0, rate, destination(project_id, model))
    if read(endpoint) == wanted:
        return False
    config = gca_endpoint.PredictRequestResponseLoggingConfig(
        enabled=wanted.enabled,
        sampling_rate=wanted.sampling_rate,
        bigquery_destination=gca_io.BigQueryDestination(output_uri=wanted.table),
    )
    endpoint.api_client.update_endpoint(
        endpoint=gca_endpoint.Endpoint(name=endpoint.resource_name, predict_request_response_logging_config=config),
        update_mask=field_mask_pb2.FieldMask(paths=[UPDATE_MASK]),
    )
    log.info(
        "request-response logging of %s: %s",
        endpoint.resource_name,
        f"{rate:.0%} of requests to {wanted.table}" if wanted.enabled else "off",
    )
    return True
