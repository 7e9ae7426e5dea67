variable "project" {
  type        = string
  description = "Google Cloud project id of the tracker."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lower-case letters, digits and dashes."
  }
}

variable "region" {
  type        = string
  description = "Region of the tracker's subnet, address and snapshots."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a region such as us-central1."
  }
}

variable "zone" {
  type        = string
  description = "Zone of the VM and its data disk, inside region (such as us-central1-b)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]-[a-z]$", var.zone))
    error_message = "zone must be a zone such as us-central1-b."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (<prefix>-tracker...) and secret id (<prefix>-sacred-mongo-uri...)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "machine_type" {
  type        = string
  description = "Machine type of the VM (edge.yaml `tracker.machine_type`); e2-small is enough for one team."
  default     = "e2-small"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*-[a-z0-9-]+$", var.machine_type))
    error_message = "machine_type must be a Compute Engine machine type such as e2-small."
  }
}

variable "disk_size_gb" {
  type        = number
  description = "Size of the MongoDB data disk in GB."
  default     = 10

  validation {
    condition     = var.disk_size_gb >= 10 && var.disk_size_gb <= 1000 && floor(var.disk_size_gb) == var.disk_size_gb
    error_message = "disk_size_gb must be a whole number between 10 and 1000."
  }
}

variable "snapshot_retention_days" {
  type        = number
  description = "Days a daily snapshot of the data disk is kept."
  default     = 14

  validation {
    condition     = var.snapshot_retention_days >= 1 && var.snapshot_retention_days <= 365 && floor(var.snapshot_retention_days) == var.snapshot_retention_days
    error_message = "snapshot_retention_days must be a whole number between 1 and 365."
  }
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

variable "vertex_peering_prefix_length" {
  type        = number
  description = "Prefix length of the range reserved for Vertex AI's peered network (private services access)."
  default     = 20

  validation {
    condition     = var.vertex_peering_prefix_length >= 8 && var.vertex_peering_prefix_length <= 24
    error_message = "vertex_peering_prefix_length must be between 8 and 24."
  }
}

variable "sacred_readers" {
  type        = map(string)
  description = "Name -> IAM member allowed to read the Sacred MongoDB URI secret (the trainer account)."
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.sacred_readers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "sacred_readers must name members, never allUsers or allAuthenticatedUsers."
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
