variable "project" {
  type        = string
  description = "Google Cloud project id the service accounts live in."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lower-case letters, digits and dashes."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of the account ids (<prefix>-trainer, <prefix>-deployer, <prefix>-web, <prefix>-ci-infra)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lower-case letters, digits and dashes, starting with a letter, so that the account ids stay within 30 characters."
  }
}

variable "bucket" {
  type        = string
  description = "The project bucket the trainer and deployer read and write (bucket-level grants only)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be a bucket name."
  }
}

variable "circleci_org_id" {
  type        = string
  description = "CircleCI organization id (a UUID, Organization Settings > Overview); empty: no workload identity federation for CI."
  default     = ""

  validation {
    condition     = var.circleci_org_id == "" || can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.circleci_org_id))
    error_message = "circleci_org_id must be empty or a UUID."
  }
}

variable "circleci_project_id" {
  type        = string
  description = "CircleCI project id (a UUID, Project Settings > Overview) whose jobs may impersonate the CI accounts."
  default     = ""

  validation {
    condition     = var.circleci_project_id == "" || can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.circleci_project_id))
    error_message = "circleci_project_id must be empty or a UUID."
  }
}
