# The identities edge runs as. None of them has a key: people and CI impersonate them
# (CI through workload identity federation, see ci.tf), Vertex AI and Cloud Run attach them.
locals {
  accounts = {
    trainer  = "Runs Vertex AI CustomJobs: reads data, writes models and checkpoints"
    deployer = "CI and operators: uploads models, deploys them to endpoints, rolls out the web service"
    web      = "The Cloud Run web service: calls predict on the endpoints"
    ci-infra = "CI's Terraform runner (plan on branches, apply on main after approval)"
    monitor  = "invoke monitor: reads the request logs and the references, writes reports under monitoring/"
  }
}

resource "google_service_account" "this" {
  for_each = local.accounts

  project      = var.project
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "edge ${each.key}"
  description  = each.value
}
