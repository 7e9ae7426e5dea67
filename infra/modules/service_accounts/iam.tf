# Calling predict on an endpoint, and nothing else (there is no GA endpoint-level IAM resource).
resource "google_project_iam_custom_role" "predictor" {
  project     = var.project
  role_id     = "${replace(var.name_prefix, "-", "_")}_predictor"
  title       = "edge predictor"
  description = "Get Vertex AI endpoints and call predict on them."
  permissions = ["aiplatform.endpoints.get", "aiplatform.endpoints.predict"]
}

# Bucket-level grants: each account reaches the project bucket only.
resource "google_storage_bucket_iam_member" "trainer_objects" {
  bucket = var.bucket
  role   = "roles/storage.objectUser"
  member = google_service_account.this["trainer"].member
}

resource "google_storage_bucket_iam_member" "deployer_objects" {
  bucket = var.bucket
  role   = "roles/storage.objectUser"
  member = google_service_account.this["deployer"].member
}

# Vertex AI has no resource-level role for uploading models or creating jobs: project level, the
# narrowest predefined role that covers upload, CustomJobs and deploy/undeploy.
resource "google_project_iam_member" "deployer_vertex" {
  project = var.project
  role    = "roles/aiplatform.user"
  member  = google_service_account.this["deployer"].member
}

# The deployer submits CustomJobs that run as the trainer.
resource "google_service_account_iam_member" "deployer_runs_as_trainer" {
  service_account_id = google_service_account.this["trainer"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.this["deployer"].member
}

# The deployer rolls out web service revisions that run as the web account.
resource "google_service_account_iam_member" "deployer_runs_as_web" {
  service_account_id = google_service_account.this["web"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.this["deployer"].member
}

# The deployer rolls out web revisions (run.developer on the service, web_service module), and
# google-cloud-run's update_service(...).result() then polls projects/P/locations/L/operations/ID. Operations
# are not children of the service, so the service-level grant does not cover them: the least that works is
# run.operations.get at project level (it reads an operation's status, nothing else).
resource "google_project_iam_custom_role" "run_operations_reader" {
  project     = var.project
  role_id     = "${replace(var.name_prefix, "-", "_")}_run_operations_reader"
  title       = "edge Cloud Run operations reader"
  description = "Read the status of Cloud Run long-running operations (a rollout being polled)."
  permissions = ["run.operations.get"]
}

resource "google_project_iam_member" "deployer_polls_run_operations" {
  project = var.project
  role    = google_project_iam_custom_role.run_operations_reader.id
  member  = google_service_account.this["deployer"].member
}

resource "google_project_iam_member" "web_predicts" {
  project = var.project
  role    = google_project_iam_custom_role.predictor.id
  member  = google_service_account.this["web"].member
}

resource "google_project_iam_member" "trainer_logs" {
  project = var.project
  role    = "roles/logging.logWriter"
  member  = google_service_account.this["trainer"].member
}

# The monitoring account reads: the bucket's objects (the shared state, the versions' references)...
resource "google_storage_bucket_iam_member" "monitor_reads_objects" {
  bucket = var.bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.this["monitor"].member
}

# ...and writes only its reports, under monitoring/ (the request logs themselves: request_log module).
resource "google_storage_bucket_iam_member" "monitor_writes_reports" {
  bucket = var.bucket
  role   = "roles/storage.objectCreator"
  member = google_service_account.this["monitor"].member

  condition {
    title      = "monitoring-reports-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${var.bucket}/objects/monitoring/\")"
  }
}

# Reads endpoints (which version answers) and model versions with their evaluations (where a reference is).
resource "google_project_iam_member" "monitor_views_vertex" {
  project = var.project
  role    = "roles/aiplatform.viewer"
  member  = google_service_account.this["monitor"].member
}
