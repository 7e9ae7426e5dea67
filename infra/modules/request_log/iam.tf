# Dataset-level grants only. Vertex AI writes the rows as its own service agent, whose predefined role
# (Vertex AI Service Agent) covers BigQuery in the project: nothing to grant for it here.

# The deployer configures the endpoints' logging to this dataset (`invoke deploy`).
resource "google_bigquery_dataset_iam_member" "writers" {
  for_each = var.writers

  project    = var.project
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = each.value
}

# The monitoring reader may only read: the dataset's tables...
resource "google_bigquery_dataset_iam_member" "readers" {
  for_each = var.readers

  project    = var.project
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

# ...through query jobs, which run in the project (BigQuery has no narrower scope for running a job; the job
# reads only what the dataset-level grant above allows).
resource "google_project_iam_member" "readers_run_queries" {
  for_each = var.readers

  project = var.project
  role    = "roles/bigquery.jobUser"
  member  = each.value
}
