# One Vertex AI endpoint for one model of edge.yaml. Terraform owns the endpoint; `invoke deploy`
# owns what is deployed on it (model versions and traffic), so those are not managed here.

# Vertex wants a numeric endpoint id (at most 10 digits, no leading zero); it changes only with the display name.
resource "random_integer" "endpoint_id" {
  min = 1000000000
  max = 9999999999
  keepers = {
    display_name = var.display_name
  }
}

resource "google_vertex_ai_endpoint" "this" {
  #checkov:skip=CKV2_GCP_33:Public endpoint behind IAM (every predict needs aiplatform.endpoints.predict); a private one would put `invoke predict`, CI and Cloud Run behind VPC connectors.
  #checkov:skip=CKV2_GCP_24:Google-managed encryption; a customer-managed key adds a KMS key ring and rotation duties for a model that serves public images.
  project      = var.project
  location     = var.region
  name         = tostring(random_integer.endpoint_id.result)
  display_name = var.display_name
  description  = "edge: serves model ${var.model}"
  labels = {
    edge-model = var.model
  }

  # Vertex AI's request-response logging to the model's table (request_log module). Terraform sets it when it
  # creates the endpoint; later changes of edge.yaml reach it through `invoke deploy` (edge's SDK update, the
  # same on both targets), so Terraform leaves the block alone after creation instead of fighting over it.
  dynamic "predict_request_response_logging_config" {
    for_each = var.request_log_sampling_rate > 0 ? [var.request_log_table] : []
    content {
      enabled       = true
      sampling_rate = var.request_log_sampling_rate
      bigquery_destination {
        output_uri = predict_request_response_logging_config.value
      }
    }
  }

  lifecycle {
    ignore_changes = [predict_request_response_logging_config]
  }
}
