# Every input comes from the root module, which validates it (validate once, where input enters).

variable "project" {
  type        = string
  description = "Google Cloud project id the service accounts live in."
}

variable "name_prefix" {
  type        = string
  description = "Prefix of the account ids (<prefix>-trainer, <prefix>-deployer, <prefix>-web, <prefix>-ci-infra), custom roles and the CI identity pool."
}

variable "bucket" {
  type        = string
  description = "The project bucket the trainer and deployer read and write (bucket-level grants only)."
}

variable "circleci_org_id" {
  type        = string
  description = "CircleCI organization id (a UUID, Organization Settings > Overview); empty: no workload identity federation for CI."
  default     = ""
}

variable "circleci_project_id" {
  type        = string
  description = "CircleCI project id (a UUID, Project Settings > Overview) whose jobs on main may impersonate the CI accounts."
  default     = ""
}

variable "circleci_context_id" {
  type        = string
  description = "Id (a UUID) of the restricted CircleCI context the CI jobs that need Google credentials run in."
  default     = ""
}
