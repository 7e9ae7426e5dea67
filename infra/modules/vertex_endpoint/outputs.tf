output "id" {
  description = "Full resource name of the endpoint: projects/<project>/locations/<region>/endpoints/<id>."
  value       = google_vertex_ai_endpoint.this.id
}

output "endpoint_id" {
  description = "Numeric id of the endpoint."
  value       = google_vertex_ai_endpoint.this.name
}

output "display_name" {
  description = "Display name of the endpoint."
  value       = google_vertex_ai_endpoint.this.display_name
}
