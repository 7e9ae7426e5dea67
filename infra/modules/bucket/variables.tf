variable "project" {
  type        = string
  description = "Google Cloud project id that owns the bucket."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lower-case letters, digits and dashes."
  }
}

variable "name" {
  type        = string
  description = "Globally unique bucket name (edge.yaml `bucket`)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.name)) && !can(regex("^goog|google", var.name))
    error_message = "name must be 3-63 lower-case letters, digits, dots, dashes or underscores, and may not start with goog or contain google."
  }
}

variable "location" {
  type        = string
  description = "Region of the bucket; the same as the Vertex AI region, so training and serving read it without cross-region traffic."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.location))
    error_message = "location must be a single region such as us-central1."
  }
}

variable "staging_retention_days" {
  type        = number
  description = "Days after which objects under staging/ (Vertex SDK uploads) are deleted."
  default     = 30

  validation {
    condition     = var.staging_retention_days >= 1 && var.staging_retention_days <= 3650 && floor(var.staging_retention_days) == var.staging_retention_days
    error_message = "staging_retention_days must be a whole number of days between 1 and 3650."
  }
}

variable "noncurrent_versions_kept" {
  type        = number
  description = "How many previous versions of each object are kept before the oldest is deleted."
  default     = 5

  validation {
    condition     = var.noncurrent_versions_kept >= 1 && var.noncurrent_versions_kept <= 100 && floor(var.noncurrent_versions_kept) == var.noncurrent_versions_kept
    error_message = "noncurrent_versions_kept must be a whole number between 1 and 100."
  }
}
