variable "project" {
  type        = string
  description = "Google Cloud project id of the service."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lower-case letters, digits and dashes."
  }
}

variable "region" {
  type        = string
  description = "Region of the Cloud Run service and the image repository."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a region such as us-central1."
  }
}

variable "name" {
  type        = string
  description = "Cloud Run service name (edge.yaml `web.service`)."

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$", var.name))
    error_message = "name must be 1-49 lower-case letters, digits and dashes, starting with a letter and not ending with a dash."
  }
}

variable "image" {
  type        = string
  description = "Container image of the first revision; later revisions are rolled out by `invoke web.deploy`."

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^ ]+$", var.image))
    error_message = "image must be a full image reference such as us-docker.pkg.dev/PROJECT/REPO/NAME:TAG."
  }
}

variable "repository" {
  type        = string
  description = "Artifact Registry Docker repository id for edge's images."
  default     = "edge"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.repository))
    error_message = "repository must be lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "service_account" {
  type        = string
  description = "Email of the service account the service runs as (the web account)."

  validation {
    condition     = can(regex("^[a-z0-9-]+@[a-z0-9.-]+\\.iam\\.gserviceaccount\\.com$", var.service_account))
    error_message = "service_account must be a service account email."
  }
}

variable "invokers" {
  type        = list(string)
  description = "IAM members allowed to call the service (user:, group:, serviceAccount:, domain:); empty keeps it private."
  default     = []

  validation {
    condition     = alltrue([for m in var.invokers : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):.+$", m))])
    error_message = "invokers must be IAM members such as user:ana@example.com or group:team@example.com; allUsers and allAuthenticatedUsers are refused."
  }
}

variable "deployers" {
  type        = map(string)
  description = "Name -> IAM member that rolls out new revisions and pushes images (the deployer account); static keys, so members may be known only after apply."
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.deployers) : can(regex("^(user|group|serviceAccount):.+$", m))])
    error_message = "deployers must be user:, group: or serviceAccount: members."
  }
}

variable "endpoints" {
  type        = map(string)
  description = "Model name -> Vertex AI endpoint resource name, passed to the service as EDGE_ENDPOINTS (JSON)."
  default     = {}
}

variable "max_instances" {
  type        = number
  description = "Upper bound of Cloud Run instances (cost ceiling)."
  default     = 2

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number between 1 and 100."
  }
}
