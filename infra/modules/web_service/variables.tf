# project, region, name, image and invokers come from the root module, which validates them (validate once,
# where input enters; the root refuses allUsers and allAuthenticatedUsers as invokers). The other inputs are
# validated here.

variable "project" {
  type        = string
  description = "Google Cloud project id of the service."
}

variable "region" {
  type        = string
  description = "Region of the Cloud Run service and the image repository."
}

variable "name" {
  type        = string
  description = "Cloud Run service name (edge.yaml `web.service`)."
}

variable "image" {
  type        = string
  description = "Container image of the first revision; later revisions are rolled out by `invoke web.deploy`."
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
