# Every input comes from the root module, which validates it (validate once, where input enters).

variable "project" {
  type        = string
  description = "Google Cloud project id of the dataset."
}

variable "location" {
  type        = string
  description = "Location of the dataset: the project's region, where the endpoints serve."
}

variable "dataset" {
  type        = string
  description = "BigQuery dataset id of the request logs (edge.yaml `monitoring.dataset`)."
}

variable "tables" {
  type        = map(string)
  description = "Model name -> its request log table id in the dataset (edge.yaml `monitoring.table`, default <model>_requests)."
}

variable "retention_days" {
  type        = number
  description = "Days a logged request is kept: the expiration of the tables' daily partitions (edge.yaml `monitoring.retention_days`)."
}

variable "writers" {
  type        = map(string)
  description = "Name -> IAM member that configures the endpoints' logging to this dataset (the deployer): data editor on the dataset only."
  default     = {}
}

variable "readers" {
  type        = map(string)
  description = "Name -> IAM member that reads the logs (`invoke monitor`): data viewer on the dataset, and query jobs in the project."
  default     = {}
}
