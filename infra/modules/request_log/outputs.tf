output "dataset" {
  description = "Dataset id of the request logs."
  value       = google_bigquery_dataset.this.dataset_id
}

output "tables" {
  description = "Model name -> its request log table as Vertex AI takes it: bq://<project>.<dataset>.<table>."
  value       = { for model, table in google_bigquery_table.requests : model => "bq://${var.project}.${table.dataset_id}.${table.table_id}" }
}
