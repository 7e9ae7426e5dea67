# edge on Google Cloud: the root module only composes the modules under modules/.

locals {
  tracker_zone = var.tracker_zone != "" ? var.tracker_zone : "${var.region}-b"
  required_apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "iap.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
  ]
}

resource "google_project_service" "required" {
  for_each = toset(local.required_apis)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# edge creates the bucket before `terraform init` (it holds this configuration's state);
# Terraform adopts it on the first apply and manages it from then on.
import {
  to = module.bucket.google_storage_bucket.this
  id = "${var.project}/${var.bucket}"
}

module "bucket" {
  source = "./modules/bucket"

  project                = var.project
  name                   = var.bucket
  location               = var.region
  staging_retention_days = var.staging_retention_days

  depends_on = [google_project_service.required]
}

module "service_accounts" {
  source = "./modules/service_accounts"

  project             = var.project
  name_prefix         = var.name_prefix
  bucket              = module.bucket.name
  circleci_org_id     = var.circleci_org_id
  circleci_project_id = var.circleci_project_id
  circleci_context_id = var.circleci_context_id

  depends_on = [google_project_service.required]
}

module "request_log" {
  source = "./modules/request_log"

  project        = var.project
  location       = var.region
  dataset        = var.monitoring_dataset
  tables         = { for name, model in var.models : name => coalesce(model.request_log_table, "${replace(name, "-", "_")}_requests") }
  retention_days = var.monitoring_retention_days
  writers        = { deployer = module.service_accounts.deployer.member }
  readers        = { monitor = module.service_accounts.monitor.member }

  depends_on = [google_project_service.required]
}

module "vertex_endpoint" {
  source   = "./modules/vertex_endpoint"
  for_each = var.models

  project                   = var.project
  region                    = var.region
  model                     = each.key
  display_name              = each.value.endpoint
  request_log_table         = module.request_log.tables[each.key]
  request_log_sampling_rate = each.value.request_log_sampling_rate

  depends_on = [google_project_service.required]
}

module "experiment_tracker" {
  source = "./modules/experiment_tracker"
  count  = var.tracker_enabled ? 1 : 0

  project                 = var.project
  region                  = var.region
  zone                    = local.tracker_zone
  name_prefix             = var.name_prefix
  machine_type            = var.tracker_machine_type
  disk_size_gb            = var.tracker_disk_size_gb
  snapshot_retention_days = var.tracker_snapshot_retention_days
  bucket                  = module.bucket.name

  depends_on = [google_project_service.required]
}

module "web_service" {
  source = "./modules/web_service"

  project         = var.project
  region          = var.region
  name            = var.web_service
  image           = var.web_image
  service_account = module.service_accounts.web.email
  deployers       = { deployer = module.service_accounts.deployer.member }
  invokers        = var.web_invokers
  endpoints       = { for model, endpoint in module.vertex_endpoint : model => endpoint.id }

  depends_on = [google_project_service.required]
}
