# Read by edge after apply (edge.infra.outputs) into the shared state: keep the names stable.

output "bucket" {
  description = "Name of the project bucket."
  value       = module.bucket.name
}

output "endpoints" {
  description = "Model name -> Vertex AI endpoint resource name (projects/.../locations/.../endpoints/ID)."
  value       = { for model, endpoint in module.vertex_endpoint : model => endpoint.id }
}

output "service_accounts" {
  description = "Role -> service account email: trainer (CustomJobs), deployer (CI, deploys), web (Cloud Run), ci_infra (CI's Terraform), monitor (invoke monitor)."
  value = {
    trainer  = module.service_accounts.trainer.email
    deployer = module.service_accounts.deployer.email
    web      = module.service_accounts.web.email
    ci_infra = module.service_accounts.ci_infra.email
    monitor  = module.service_accounts.monitor.email
  }
}

output "request_logs" {
  description = "Model name -> the BigQuery table its endpoint logs requests to (bq://<project>.<dataset>.<table>)."
  value       = module.request_log.tables
}

output "workload_identity_provider" {
  description = "CircleCI workload identity provider name for the CI credential file; empty when circleci_org_id is not set."
  value       = module.service_accounts.workload_identity_provider
}

output "web_url" {
  description = "HTTPS URL of the web service (private: callers need run.invoker)."
  value       = module.web_service.url
}

output "image_repository" {
  description = "Artifact Registry path for edge's images: <region>-docker.pkg.dev/<project>/edge."
  value       = module.web_service.repository
}

output "tracker" {
  description = "The experiment tracker, or null when disabled: instance, zone, ports, Omniboard user and the secret ids to read."
  value = var.tracker_enabled ? {
    instance                  = module.experiment_tracker[0].instance
    zone                      = module.experiment_tracker[0].zone
    internal_ip               = module.experiment_tracker[0].internal_ip
    omniboard_port            = module.experiment_tracker[0].omniboard_port
    mongo_port                = module.experiment_tracker[0].mongo_port
    omniboard_user            = module.experiment_tracker[0].omniboard_user
    omniboard_password_secret = module.experiment_tracker[0].omniboard_password_secret
  } : null
}
