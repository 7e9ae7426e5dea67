# The VM reads the secrets it needs to start MongoDB and the proxy, and writes logs and metrics.
resource "google_secret_manager_secret_iam_member" "tracker" {
  for_each = toset(["mongo-root-password", "sacred-mongo-password", "omniboard-htpasswd"])

  project   = var.project
  secret_id = google_secret_manager_secret.this[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.tracker.member
}

# The VM may read the Sacred runs that edge writes to gs://<bucket>/<experiments_prefix> (the run importer
# fills MongoDB and Omniboard from them), and nothing else of the bucket: a conditional, bucket-level grant. Reading an
# object is checked on the object's name; listing is checked on the bucket, with the list request's prefix.
resource "google_storage_bucket_iam_member" "tracker_reads_experiments" {
  bucket = var.bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.tracker.member

  condition {
    title       = "${var.name_prefix}-tracker-experiments-only"
    description = "Read and list objects under ${var.experiments_prefix} only"
    expression  = local.experiments_condition
  }
}

resource "google_project_iam_member" "tracker_logs" {
  project = var.project
  role    = "roles/logging.logWriter"
  member  = google_service_account.tracker.member
}

resource "google_project_iam_member" "tracker_metrics" {
  project = var.project
  role    = "roles/monitoring.metricWriter"
  member  = google_service_account.tracker.member
}
