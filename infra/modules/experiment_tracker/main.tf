# The experiment tracker: MongoDB (Sacred's observer store) and Omniboard behind an nginx basic-auth
# proxy, as containers on one Container-Optimized OS VM, and the run importer (importer/), which copies the
# Sacred runs edge writes to gs://<bucket>/<experiments_prefix> into MongoDB every minute. Private: no
# external IP; people reach it through IAP TCP forwarding (network.tf); nothing else connects to MongoDB.
locals {
  name          = "${var.name_prefix}-tracker"
  tag           = "${var.name_prefix}-tracker"
  proxy_port    = 8080
  mongo_port    = 27017
  omniboard_url = "http://localhost:${local.proxy_port}"
  # IAM condition of the tracker's read access to the bucket (iam.tf): objects under the prefix, and list
  # requests whose prefix starts with it.
  experiments_condition = join(" || ", [
    "resource.name.startsWith(\"projects/_/buckets/${var.bucket}/objects/${var.experiments_prefix}\")",
    "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${var.experiments_prefix}\")",
  ])
}

resource "google_service_account" "tracker" {
  project      = var.project
  account_id   = local.name
  display_name = "edge experiment tracker VM"
  description  = "Runs the MongoDB, Omniboard and run importer containers; reads their secrets and the experiment runs, writes logs"
}

resource "google_compute_address" "tracker" {
  project      = var.project
  region       = var.region
  name         = "${local.name}-internal"
  address_type = "INTERNAL"
  subnetwork   = google_compute_subnetwork.this.id
}

resource "google_compute_disk" "data" {
  #checkov:skip=CKV_GCP_37:Google-managed encryption at rest; a customer-supplied key would have to be handed to every boot and snapshot restore.
  project = var.project
  zone    = var.zone
  name    = "${local.name}-data"
  type    = "pd-balanced"
  size    = var.disk_size_gb
}

resource "google_compute_resource_policy" "snapshots" {
  project = var.project
  region  = var.region
  name    = "${local.name}-daily"

  snapshot_schedule_policy {
    schedule {
      daily_schedule {
        days_in_cycle = 1
        start_time    = "03:00"
      }
    }
    retention_policy {
      max_retention_days    = var.snapshot_retention_days
      on_source_disk_delete = "KEEP_AUTO_SNAPSHOTS"
    }
    snapshot_properties {
      storage_locations = [var.region]
      labels = {
        edge-disk = "${local.name}-data"
      }
    }
  }
}

resource "google_compute_disk_resource_policy_attachment" "snapshots" {
  project = var.project
  zone    = var.zone
  disk    = google_compute_disk.data.name
  name    = google_compute_resource_policy.snapshots.name
}

resource "google_compute_instance" "tracker" {
  #checkov:skip=CKV_GCP_38:Google-managed encryption of the boot disk; it holds only the OS image and can be recreated at any time.
  project                   = var.project
  zone                      = var.zone
  name                      = local.name
  machine_type              = var.machine_type
  tags                      = [local.tag]
  allow_stopping_for_update = true

  boot_disk {
    initialize_params {
      image = "cos-cloud/cos-stable"
      size  = 10
      type  = "pd-balanced"
    }
  }

  attached_disk {
    source      = google_compute_disk.data.id
    device_name = "data"
  }

  network_interface {
    subnetwork = google_compute_subnetwork.this.id
    network_ip = google_compute_address.tracker.address
    # no access_config: no external IP
  }

  service_account {
    email  = google_service_account.tracker.email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    block-project-ssh-keys = "true"
    enable-oslogin         = "TRUE"
    google-logging-enabled = "true"
    # No secret in here: the VM reads them from Secret Manager at boot.
    user-data = templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
      project               = var.project
      mongo_image           = var.mongo_image
      omniboard_image       = var.omniboard_image
      proxy_image           = var.proxy_image
      mongo_port            = local.mongo_port
      proxy_port            = local.proxy_port
      root_secret           = google_secret_manager_secret.this["mongo-root-password"].secret_id
      sacred_secret         = google_secret_manager_secret.this["sacred-mongo-password"].secret_id
      htpasswd_secret       = google_secret_manager_secret.this["omniboard-htpasswd"].secret_id
      bucket                = var.bucket
      experiments_prefix    = var.experiments_prefix
      importer_image        = var.importer_image
      importer_script       = file("${path.module}/importer/import_runs.py")
      importer_requirements = file("${path.module}/importer/requirements.txt")
    })
  }

  depends_on = [
    google_secret_manager_secret_version.this,
    google_secret_manager_secret_iam_member.tracker,
    google_compute_router_nat.this,
  ]
}
