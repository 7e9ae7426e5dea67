# project, name, location and staging_retention_days come from the root module, which validates them
# (validate once, where input enters); the other inputs enter here and are validated here.

variable "project" {
  type        = string
  description = "Google Cloud project id that owns the bucket."
}

variable "name" {
  type        = string
  description = "Globally unique bucket name (edge.yaml `bucket`)."
}

variable "location" {
  type        = string
  description = "Region of the bucket; the same as the Vertex AI region, so training and serving read it without cross-region traffic."
}

variable "staging_retention_days" {
  type        = number
  description = "Days after which objects under staging/ (Vertex SDK uploads) are deleted (made noncurrent: the bucket is versioned)."
  default     = 30
}

variable "staging_noncurrent_days" {
  type        = number
  description = "Days a noncurrent (deleted or replaced) version of an object under staging/ is kept before it is removed for good."
  default     = 7

  validation {
    condition     = var.staging_noncurrent_days >= 1 && var.staging_noncurrent_days <= 365 && floor(var.staging_noncurrent_days) == var.staging_noncurrent_days
    error_message = "staging_noncurrent_days must be a whole number of days between 1 and 365."
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
