# Where Vertex AI's request-response logging writes: one table per model in the layout Vertex writes (schema
# "v1", https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging), partitioned by day of
# logging_time. A query must filter on logging_time (require_partition_filter), so `invoke monitor` reads only
# its window's partitions; partitions older than the retention are dropped by BigQuery itself.
locals {
  retention_ms = var.retention_days * 24 * 60 * 60 * 1000
  schema = [
    { name = "endpoint", type = "STRING", mode = "NULLABLE", description = "Endpoint resource name" },
    { name = "deployed_model_id", type = "STRING", mode = "NULLABLE", description = "Deployed model that answered" },
    { name = "logging_time", type = "TIMESTAMP", mode = "NULLABLE", description = "When the request was logged" },
    { name = "request_id", type = "NUMERIC", mode = "NULLABLE", description = "Request id" },
    { name = "request_payload", type = "STRING", mode = "REPEATED", description = "One JSON text per instance" },
    { name = "response_payload", type = "STRING", mode = "REPEATED", description = "One JSON text per prediction" },
  ]
}

resource "google_bigquery_dataset" "this" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption; a customer-managed key adds a KMS key ring and rotation duties for logs of public images.
  project                         = var.project
  dataset_id                      = var.dataset
  location                        = var.location
  friendly_name                   = "edge request logs"
  description                     = "edge: Vertex AI request-response logs of the models' endpoints, read by invoke monitor."
  default_partition_expiration_ms = local.retention_ms
  delete_contents_on_destroy      = false
  labels = {
    managed-by = "edge"
  }
  # No `access` blocks: access comes from IAM (iam.tf), never from allUsers or allAuthenticatedUsers.
}

resource "google_bigquery_table" "requests" {
  #checkov:skip=CKV_GCP_80:Google-managed encryption, as the dataset's.
  #checkov:skip=CKV_GCP_121:`invoke destroy` removes what edge made; the rows expire after retention_days anyway.
  for_each = var.tables

  project                  = var.project
  dataset_id               = google_bigquery_dataset.this.dataset_id
  table_id                 = each.value
  description              = "Requests and responses of the endpoint of model ${each.key}, as Vertex AI logs them."
  deletion_protection      = false
  require_partition_filter = true
  schema                   = jsonencode(local.schema)
  labels = {
    edge-model = each.key
  }

  time_partitioning {
    type          = "DAY"
    field         = "logging_time"
    expiration_ms = local.retention_ms
  }
}
