# Values come from edge.yaml through templates/terraform.tfvars.json.j2 (`invoke infra.plan` renders
# them into .edge/infra/terraform.tfvars.json); the defaults below are what edge.yaml leaves out.

variable "project" {
  type        = string
  description = "Google Cloud project id (edge.yaml `project`)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lower-case letters, digits and dashes."
  }
}

variable "region" {
  type        = string
  description = "Region of the bucket, Vertex AI, Cloud Run and the tracker (edge.yaml `region`)."

  # The same pattern as edge/config.py's _REGION (tests/infra check that both accept and refuse the same
  # names): one or more digits, so europe-west10 or us-east5 pass. Validated here only, not in the modules.
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region such as us-central1 or europe-west10."
  }
}

variable "bucket" {
  type        = string
  description = "Project bucket: state, DVC remote, staging, models and Terraform state (edge.yaml `bucket`)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.bucket)) && !can(regex("^goog|google", var.bucket))
    error_message = "bucket must be 3-63 lower-case letters, digits, dots, dashes or underscores, and may not start with goog or contain google."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of the names edge gives to service accounts, the tracker VM, its network, secrets and the CI identity pool (edge.yaml `infra.name_prefix`)."
  default     = "edge"

  # 2-21 characters keep <prefix>-ci-infra within the 30 characters of a service account id; a workload
  # identity pool id may not start with gcp- (<prefix>-ci).
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}[a-z0-9]$", var.name_prefix)) && !startswith("${var.name_prefix}-", "gcp-")
    error_message = "name_prefix must be 2-21 lower-case letters, digits and dashes, starting with a letter and not gcp."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels (besides managed-by = edge)."
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "labels must have lower-case keys (starting with a letter) and values of letters, digits, dashes and underscores."
  }
}

variable "models" {
  type = map(object({
    endpoint                  = string
    request_log_table         = optional(string)
    request_log_sampling_rate = optional(number, 1)
  }))
  description = "Models of edge.yaml: name -> { endpoint = endpoint display name, request_log_table = its table in the monitoring dataset (default <model>_requests), request_log_sampling_rate = share of requests logged (edge.yaml `monitoring`) }; one Vertex AI endpoint each."

  validation {
    condition     = length(var.models) > 0 && alltrue([for name, m in var.models : can(regex("^[a-z][a-z0-9-]{0,62}$", name)) && length(m.endpoint) > 0 && length(m.endpoint) <= 128])
    error_message = "models must name at least one model (lower-case letters, digits, dashes), each with an endpoint display name of 1-128 characters."
  }

  validation {
    condition     = alltrue([for name, m in var.models : (m.request_log_table == null || can(regex("^[A-Za-z0-9_]+$", m.request_log_table)) && length(coalesce(m.request_log_table, "x")) <= 1024) && m.request_log_sampling_rate >= 0 && m.request_log_sampling_rate <= 1])
    error_message = "each model's request_log_table must be a BigQuery table id (letters, digits, underscores) and its request_log_sampling_rate a number from 0 to 1."
  }
}

variable "monitoring_dataset" {
  type        = string
  description = "BigQuery dataset of the endpoints' request logs (edge.yaml `monitoring.dataset`)."
  default     = "edge_monitoring"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]+$", var.monitoring_dataset)) && length(var.monitoring_dataset) <= 1024
    error_message = "monitoring_dataset must be a BigQuery dataset id: letters, digits and underscores."
  }
}

variable "monitoring_retention_days" {
  type        = number
  description = "Days a logged request is kept in BigQuery (edge.yaml `monitoring.retention_days`)."
  default     = 30

  validation {
    condition     = var.monitoring_retention_days >= 1 && var.monitoring_retention_days <= 3650 && floor(var.monitoring_retention_days) == var.monitoring_retention_days
    error_message = "monitoring_retention_days must be a whole number of days between 1 and 3650."
  }
}

variable "staging_retention_days" {
  type        = number
  description = "Days after which objects under the bucket's staging/ prefix are deleted."
  default     = 30

  validation {
    condition     = var.staging_retention_days >= 1 && var.staging_retention_days <= 3650 && floor(var.staging_retention_days) == var.staging_retention_days
    error_message = "staging_retention_days must be a whole number of days between 1 and 3650."
  }
}

variable "tracker_enabled" {
  type        = bool
  description = "Create the Omniboard + MongoDB experiment tracker VM (edge.yaml `tracker.enabled`)."
  default     = true
}

variable "tracker_machine_type" {
  type        = string
  description = "Machine type of the tracker VM (edge.yaml `tracker.machine_type`)."
  default     = "e2-small"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.tracker_machine_type))
    error_message = "tracker_machine_type must be a Compute Engine machine type such as e2-small."
  }
}

variable "tracker_zone" {
  type        = string
  description = "Zone of the tracker VM (edge.yaml `tracker.zone`); empty means <region>-b."
  default     = ""

  validation {
    condition     = var.tracker_zone == "" || can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.tracker_zone))
    error_message = "tracker_zone must be empty or a zone such as us-central1-b or europe-west10-a."
  }
}

variable "tracker_disk_size_gb" {
  type        = number
  description = "Size of the tracker's MongoDB data disk in GB."
  default     = 10

  validation {
    condition     = var.tracker_disk_size_gb >= 10 && var.tracker_disk_size_gb <= 1000 && floor(var.tracker_disk_size_gb) == var.tracker_disk_size_gb
    error_message = "tracker_disk_size_gb must be a whole number between 10 and 1000."
  }
}

variable "tracker_snapshot_retention_days" {
  type        = number
  description = "Days a daily snapshot of the tracker's data disk is kept."
  default     = 14

  validation {
    condition     = var.tracker_snapshot_retention_days >= 1 && var.tracker_snapshot_retention_days <= 365 && floor(var.tracker_snapshot_retention_days) == var.tracker_snapshot_retention_days
    error_message = "tracker_snapshot_retention_days must be a whole number between 1 and 365."
  }
}

variable "web_service" {
  type        = string
  description = "Cloud Run service name of the web app (edge.yaml `web.service`)."
  default     = "fashion-web"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$", var.web_service))
    error_message = "web_service must be 1-49 lower-case letters, digits and dashes, starting with a letter and not ending with a dash."
  }
}

variable "web_image" {
  type        = string
  description = "Image of the web service's first revision (edge.yaml `web.image`); Google's hello container until `invoke web.deploy` builds one."
  default     = "us-docker.pkg.dev/cloudrun/container/hello:latest"

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^ ]+$", var.web_image))
    error_message = "web_image must be a full image reference such as us-docker.pkg.dev/PROJECT/REPO/NAME:TAG."
  }
}

variable "web_invokers" {
  type        = list(string)
  description = "IAM members allowed to call the web service (edge.yaml `web.invokers`); empty keeps it private."
  default     = []

  validation {
    condition     = alltrue([for m in var.web_invokers : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):.+$", m))])
    error_message = "web_invokers must be IAM members such as user:ana@example.com or group:team@example.com; allUsers and allAuthenticatedUsers are refused."
  }
}

variable "circleci_org_id" {
  type        = string
  description = "CircleCI organization id (UUID, edge.yaml `infra.circleci_org_id`) for workload identity federation; empty: CI federation is not created."
  default     = ""

  validation {
    condition     = var.circleci_org_id == "" || can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.circleci_org_id))
    error_message = "circleci_org_id must be empty or a UUID."
  }
}

variable "circleci_project_id" {
  type        = string
  description = "CircleCI project id (UUID, edge.yaml `infra.circleci_project_id`) whose jobs on main may impersonate the deployer and ci-infra accounts."
  default     = ""

  validation {
    condition     = var.circleci_project_id == "" || can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.circleci_project_id))
    error_message = "circleci_project_id must be empty or a UUID."
  }
}

variable "circleci_context_id" {
  type        = string
  description = "Id (UUID, edge.yaml `infra.circleci_context_id`) of the restricted CircleCI context (edge-gcp) every CI job that gets Google credentials runs in."
  default     = ""

  validation {
    condition     = var.circleci_context_id == "" || can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.circleci_context_id))
    error_message = "circleci_context_id must be empty or a UUID."
  }

  validation {
    condition     = length(toset([var.circleci_org_id == "", var.circleci_project_id == "", var.circleci_context_id == ""])) == 1
    error_message = "circleci_org_id, circleci_project_id and circleci_context_id go together: set all three, or none."
  }
}
