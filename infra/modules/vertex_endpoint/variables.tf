variable "project" {
  type        = string
  description = "Google Cloud project id of the endpoint."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lower-case letters, digits and dashes."
  }
}

variable "region" {
  type        = string
  description = "Vertex AI region of the endpoint, such as us-central1."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a region such as us-central1."
  }
}

variable "model" {
  type        = string
  description = "Name of the model in edge.yaml that this endpoint serves (used as a label)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.model))
    error_message = "model must be lower-case letters, digits and dashes, starting with a letter (at most 63 characters)."
  }
}

variable "display_name" {
  type        = string
  description = "Display name of the endpoint (edge.yaml `models.<name>.endpoint`), how edge finds it."

  validation {
    condition     = length(var.display_name) >= 1 && length(var.display_name) <= 128
    error_message = "display_name must be 1-128 characters."
  }
}
