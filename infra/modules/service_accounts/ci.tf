# Workload identity federation for CircleCI: a job's OIDC token is exchanged for a short-lived token of a
# service account; no key file exists. Created only when the CircleCI ids are set (edge.yaml `infra:`).
locals {
  circleci = var.circleci_org_id != ""
  # Only jobs of this CircleCI project, on main, in the restricted context, and not an SSH rerun (a person
  # at a shell) may exchange a token at all. The claims are CircleCI's documented ones (infra/README.md).
  circleci_condition = join(" && ", [
    "assertion['oidc.circleci.com/project-id'] == '${var.circleci_project_id}'",
    "assertion['oidc.circleci.com/vcs-ref'] == 'refs/heads/main'",
    "'${var.circleci_context_id}' in assertion['oidc.circleci.com/context-ids']",
    "!('oidc.circleci.com/ssh-rerun' in assertion && assertion['oidc.circleci.com/ssh-rerun'] == true)",
  ])
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
    # google.subject may not exceed 127 bytes. The sub of CircleCI's V1 token (CIRCLE_OIDC_TOKEN, which CI
    # uses) is org/<uuid>/project/<uuid>/user/<uuid>: exactly 127. The V2 format appends
    # /vcs-origin/<repository>/vcs-ref/<ref> and overflows: cut it off, so either format maps to the same subject.
    "google.subject"        = "assertion.sub.split('/vcs-origin/')[0]"
    "attribute.project"     = "assertion['oidc.circleci.com/project-id']"
    "attribute.project_ref" = "assertion['oidc.circleci.com/project-id'] + ':' + assertion['oidc.circleci.com/vcs-ref']"
  }
  attribute_condition = local.circleci_condition

  oidc {
    issuer_uri        = "https://oidc.circleci.com/org/${var.circleci_org_id}"
    allowed_audiences = [var.circleci_org_id]
  }
}

# Both CI identities may be impersonated by jobs on main only (the provider's condition says so too):
# train / deploy / web.deploy as the deployer, infra.plan / infra.apply as ci-infra.
resource "google_service_account_iam_member" "ci_main_is_deployer" {
  count = local.circleci ? 1 : 0

  service_account_id = google_service_account.this["deployer"].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.ci[0].name}/attribute.project_ref/${var.circleci_project_id}:refs/heads/main"
}

# The scheduled monitoring job (CircleCI, main only) runs as the read-only monitor account.
resource "google_service_account_iam_member" "ci_main_is_monitor" {
  count = local.circleci ? 1 : 0

  service_account_id = google_service_account.this["monitor"].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.ci[0].name}/attribute.project_ref/${var.circleci_project_id}:refs/heads/main"
}

# ci-infra's project roles are granted by a project owner, outside this configuration, so that Terraform
# never manages the privileges of the identity that runs it (see infra/README.md). Owner-level: main only.
resource "google_service_account_iam_member" "ci_main_is_infra" {
  count = local.circleci ? 1 : 0

  service_account_id = google_service_account.this["ci-infra"].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.ci[0].name}/attribute.project_ref/${var.circleci_project_id}:refs/heads/main"
}
