# Every input comes from the root module, which validates it (validate once, where input enters).

variable "project" {
  type        = string
  description = "Google Cloud project id of the endpoint."
}

variable "region" {
  type        = string
  description = "Vertex AI region of the endpoint, such as us-central1."
}

variable "model" {
  type        = string
  description = "Name of the model in edge.yaml that this endpoint serves (used as a label)."
}

variable "display_name" {
  type        = string
  description = "Display name of the endpoint (edge.yaml `models.<name>.endpoint`), how edge finds it."
}

variable "request_log_table" {
  type        = string
  description = "BigQuery table the endpoint logs its requests to, bq://<project>.<dataset>.<table> (request_log module)."
}

variable "request_log_sampling_rate" {
  type        = number
  description = "Share of requests logged, 0 to 1 (edge.yaml `monitoring.sampling_rate`); 0 leaves logging off."
}
