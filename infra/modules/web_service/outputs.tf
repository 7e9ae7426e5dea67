output "name" {
  description = "Name of the Cloud Run service."
  value       = google_cloud_run_v2_service.this.name
}

output "url" {
  description = "HTTPS URL of the service (callers need run.invoker and an identity token)."
  value       = google_cloud_run_v2_service.this.uri
}

output "repository" {
  description = "Docker repository for edge's images: <region>-docker.pkg.dev/<project>/<repository>."
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}
