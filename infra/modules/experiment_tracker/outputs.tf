output "instance" {
  description = "Name of the tracker VM (for `gcloud compute start-iap-tunnel`)."
  value       = google_compute_instance.tracker.name
}

output "zone" {
  description = "Zone of the tracker VM."
  value       = google_compute_instance.tracker.zone
}

output "internal_ip" {
  description = "Private IP address of the tracker VM."
  value       = google_compute_address.tracker.address
}

output "omniboard_port" {
  description = "Port of the basic-auth proxy in front of Omniboard on the VM (tunnel to it with IAP)."
  value       = local.proxy_port
}

output "mongo_port" {
  description = "MongoDB port on the VM."
  value       = local.mongo_port
}

output "omniboard_user" {
  description = "User name of Omniboard's basic auth."
  value       = var.omniboard_user
}

output "omniboard_password_secret" {
  description = "Secret Manager secret id holding Omniboard's basic-auth password."
  value       = google_secret_manager_secret.this["omniboard-password"].secret_id
}
