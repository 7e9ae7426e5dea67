# The VM reads the secrets it needs to start MongoDB and the proxy, and writes logs and metrics.
resource "google_secret_manager_secret_iam_member" "tracker" {
  for_each = toset(["mongo-root-password", "sacred-mongo-password", "omniboard-htpasswd"])

  project   = var.project
  secret_id = google_secret_manager_secret.this[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.tracker.member
}

# Only the given readers (the trainer account) may read the Sacred connection string.
resource "google_secret_manager_secret_iam_member" "sacred_readers" {
  for_each = toset(var.sacred_readers)

  project   = var.project
  secret_id = google_secret_manager_secret.this["sacred-mongo-uri"].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
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
