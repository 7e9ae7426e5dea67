# Only the listed members may call the service; never allUsers / allAuthenticatedUsers (see variables.tf).
resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = toset(var.invokers)

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

# The deployers roll out new revisions of this service only, and push images to this repository only.
resource "google_cloud_run_v2_service_iam_member" "deployers" {
  for_each = var.deployers

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.developer"
  member   = each.value
}

resource "google_artifact_registry_repository_iam_member" "deployers" {
  for_each = var.deployers

  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = each.value
}
