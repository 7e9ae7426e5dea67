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
