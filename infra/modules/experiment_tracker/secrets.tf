# Generated credentials, kept in Secret Manager (and, as for every generated value, in the
# Terraform state, which lives in the private project bucket). Nothing secret is rendered into
# tfvars or the VM's metadata.
locals {
  secret_names = ["mongo-root-password", "sacred-mongo-password", "omniboard-password", "omniboard-htpasswd"]
  secret_values = {
    mongo-root-password = random_password.mongo_root.result
    # The `sacred` user of MongoDB, with which Omniboard reads and the run importer writes (on the VM only).
    sacred-mongo-password = random_password.sacred.result
    omniboard-password    = random_password.omniboard.result
    # nginx (Alpine, musl crypt) checks bcrypt hashes.
    omniboard-htpasswd = "${var.omniboard_user}:${random_password.omniboard.bcrypt_hash}"
  }
}

# Letters and digits only, so the values need no escaping in a MongoDB URI.
resource "random_password" "mongo_root" {
  length  = 32
  special = false
}

resource "random_password" "sacred" {
  length  = 32
  special = false
}

resource "random_password" "omniboard" {
  length  = 24
  special = false
}

resource "google_secret_manager_secret" "this" {
  for_each = toset(local.secret_names)

  project   = var.project
  secret_id = "${var.name_prefix}-${each.key}"

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "this" {
  for_each = toset(local.secret_names)

  secret      = google_secret_manager_secret.this[each.key].id
  secret_data = local.secret_values[each.key]
}
