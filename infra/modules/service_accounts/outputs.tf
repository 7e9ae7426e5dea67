output "trainer" {
  description = "The trainer account: email (Vertex CustomJob service_account) and IAM member string."
  value       = { email = google_service_account.this["trainer"].email, member = google_service_account.this["trainer"].member }
}

output "deployer" {
  description = "The deployer account (CI and operators): email and IAM member string."
  value       = { email = google_service_account.this["deployer"].email, member = google_service_account.this["deployer"].member }
}

output "web" {
  description = "The web service account: email and IAM member string."
  value       = { email = google_service_account.this["web"].email, member = google_service_account.this["web"].member }
}

output "ci_infra" {
  description = "CI's Terraform runner account: email and IAM member string."
  value       = { email = google_service_account.this["ci-infra"].email, member = google_service_account.this["ci-infra"].member }
}

output "monitor" {
  description = "The monitoring account (`invoke monitor`, the scheduled CI job): email and IAM member string."
  value       = { email = google_service_account.this["monitor"].email, member = google_service_account.this["monitor"].member }
}

output "workload_identity_provider" {
  description = "Full name of the CircleCI workload identity provider (for `gcloud iam workload-identity-pools create-cred-config`); empty when CI federation is off."
  value       = try(google_iam_workload_identity_pool_provider.circleci[0].name, "")
}
