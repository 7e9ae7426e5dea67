# The project bucket: edge's shared state, the DVC remote (dvc/), Vertex staging (staging/), models and
# Terraform's own state. Private, versioned, in the project's region.
resource "google_storage_bucket" "this" {
  #checkov:skip=CKV_GCP_62:Access is audited by Cloud Audit Logs; a second bucket only for usage logs doubles the storage bill of a one-team project.
  project                     = var.project
  name                        = var.name
  location                    = upper(var.location)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Vertex SDK uploads (training packages, staged artifacts) are only needed while a job starts. The bucket is
  # versioned, so this rule only makes the live version noncurrent...
  lifecycle_rule {
    condition {
      age            = var.staging_retention_days
      matches_prefix = ["staging/"]
      with_state     = "LIVE"
    }
    action {
      type = "Delete"
    }
  }

  # ...and this one removes it for good, a few days later (a deleted object never gets newer versions, so
  # the num_newer_versions rule below would keep it forever).
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.staging_noncurrent_days
      matches_prefix             = ["staging/"]
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  # Keep a few previous versions of every object (state JSON, Terraform state, DVC cache) for recovery.
  lifecycle_rule {
    condition {
      num_newer_versions = var.noncurrent_versions_kept
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}
