# Workload identity federation for CircleCI: a job's OIDC token is exchanged for a short-lived
# token of a service account; no key file exists. Created only when circleci_org_id is set.
locals {
  circleci = var.circleci_org_id != ""
}

resource "google_iam_workload_identity_pool" "ci" {
  count = local.circleci ? 1 : 0

  project                   = var.project
  workload_identity_pool_id = "${var.name_prefix}-ci"
  display_name              = "edge CI"
  description               = "CircleCI jobs of one project"
}

resource "google_iam_workload_identity_pool_provider" "circleci" {
  count = local.circleci ? 1 : 0

  project                            = var.project
  workload_identity_pool_id          = google_iam_workload_identity_pool.ci[0].workload_identity_pool_id
  workload_identity_pool_provider_id = "circleci"
  display_name                       = "CircleCI"

  attribute_mapping = {
    "google.subject"        = "assertion.sub"
    "attribute.project"     = "assertion['oidc.circleci.com/project-id']"
    "attribute.project_ref" = "assertion['oidc.circleci.com/project-id'] + ':' + assertion['oidc.circleci.com/vcs-ref']"
  }
  # Only tokens of this CircleCI project are accepted at all.
  attribute_condition = "assertion['oidc.circleci.com/project-id'] == '${var.circleci_project_id}'"

  oidc {
    issuer_uri        = "https://oidc.circleci.com/org/${var.circleci_org_id}"
    allowed_audiences = [var.circleci_org_id]
  }
}

# train / deploy / web.deploy run as the deployer, from the main branch only.
resource "google_service_account_iam_member" "ci_main_is_deployer" {
  count = local.circleci ? 1 : 0

  service_account_id = google_service_account.this["deployer"].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.ci[0].name}/attribute.project_ref/${var.circleci_project_id}:refs/heads/main"
}

# infra.plan (any branch) and infra.apply (main, after the approval job) run as ci-infra. Its
# project roles are granted by a project owner, outside this configuration, so that Terraform
# never manages the privileges of the identity that runs it (see the README).
resource "google_service_account_iam_member" "ci_is_infra" {
  count = local.circleci ? 1 : 0

  service_account_id = google_service_account.this["ci-infra"].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.ci[0].name}/attribute.project/${var.circleci_project_id}"
}
