terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0.0, < 7.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
  }

  # Configured at `terraform init` by edge (`-backend-config=bucket=...`, `-backend-config=prefix=...`),
  # from edge.yaml: never hard-coded here.
  backend "gcs" {}
}

provider "google" {
  project        = var.project
  region         = var.region
  default_labels = merge({ managed-by = "edge" }, var.labels)
}
