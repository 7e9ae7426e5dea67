# project, region, zone, name_prefix, machine_type, disk_size_gb, snapshot_retention_days and bucket come from
# the root module, which validates them (validate once, where input enters). Inputs that enter here (CIDRs,
# images, user name, experiments prefix) are validated here.

variable "project" {
  type        = string
  description = "Google Cloud project id of the tracker."
}

variable "region" {
  type        = string
  description = "Region of the tracker's subnet, address and snapshots."
}

variable "zone" {
  type        = string
  description = "Zone of the VM and its data disk, inside region (such as us-central1-b)."
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (<prefix>-tracker...) and secret id (<prefix>-omniboard-password...)."
}

variable "machine_type" {
  type        = string
  description = "Machine type of the VM (edge.yaml `tracker.machine_type`); e2-small is enough for one team."
  default     = "e2-small"
}

variable "disk_size_gb" {
  type        = number
  description = "Size of the MongoDB data disk in GB."
  default     = 10
}

variable "snapshot_retention_days" {
  type        = number
  description = "Days a daily snapshot of the data disk is kept."
  default     = 14
}

variable "subnet_cidr" {
  type        = string
  description = "Private IPv4 range of the tracker's subnet."
  default     = "10.42.0.0/24"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0)) && can(regex("^(10\\.|172\\.(1[6-9]|2[0-9]|3[01])\\.|192\\.168\\.)", var.subnet_cidr))
    error_message = "subnet_cidr must be a private (RFC 1918) IPv4 CIDR such as 10.42.0.0/24."
  }
}

variable "bucket" {
  type        = string
  description = "The project bucket; the VM may read the objects under experiments_prefix in it (Sacred runs written by edge)."
}

variable "experiments_prefix" {
  type        = string
  description = "Prefix of the Sacred runs in the bucket that the VM may read and list (an importer fills MongoDB from them)."
  default     = "experiments/"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*/$", var.experiments_prefix))
    error_message = "experiments_prefix must be one folder name ending with a slash, such as experiments/."
  }
}

variable "omniboard_user" {
  type        = string
  description = "User name for Omniboard's basic auth (the password is generated into Secret Manager)."
  default     = "edge"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,31}$", var.omniboard_user))
    error_message = "omniboard_user must be 1-32 lower-case letters, digits, dashes or underscores."
  }
}

variable "mongo_image" {
  type        = string
  description = "MongoDB container image."
  default     = "mongo:7.0"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$", var.mongo_image))
    error_message = "mongo_image must be a container image reference such as name:tag or host/path/name@sha256:digest."
  }
}

variable "omniboard_image" {
  type        = string
  description = "Omniboard container image."
  default     = "vivekratnavel/omniboard:latest"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$", var.omniboard_image))
    error_message = "omniboard_image must be a container image reference such as name:tag or host/path/name@sha256:digest."
  }
}

variable "proxy_image" {
  type        = string
  description = "nginx container image of the basic-auth proxy (Alpine: its crypt checks bcrypt)."
  default     = "nginx:1.27-alpine"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$", var.proxy_image))
    error_message = "proxy_image must be a container image reference such as name:tag or host/path/name@sha256:digest."
  }
}

variable "importer_image" {
  type        = string
  description = "Python container image the run importer (importer/import_runs.py) runs in, every minute; its venv is kept on the data disk."
  default     = "python:3.12-slim"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$", var.importer_image))
    error_message = "importer_image must be a container image reference such as name:tag or host/path/name@sha256:digest."
  }
}
