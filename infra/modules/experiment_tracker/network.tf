# A private network for the tracker: IAP for people, Cloud NAT so the VM can pull its container images (and
# the importer its packages), and nothing reachable from the internet. Nothing but the VM itself connects to
# MongoDB: training records runs in the bucket, and the importer on the VM copies them in.
resource "google_compute_network" "this" {
  project                 = var.project
  name                    = local.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "this" {
  project                  = var.project
  region                   = var.region
  name                     = local.name
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  project = var.project
  region  = var.region
  name    = local.name
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  project                            = var.project
  region                             = var.region
  name                               = local.name
  router                             = google_compute_router.this.name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.this.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# People: `gcloud compute start-iap-tunnel` to SSH, the Omniboard proxy and MongoDB.
resource "google_compute_firewall" "iap" {
  project       = var.project
  name          = "${local.name}-allow-iap"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"] # Google's IAP TCP forwarding range, nothing else
  target_tags   = [local.tag]

  allow {
    protocol = "tcp"
    ports    = ["22", tostring(local.proxy_port), tostring(local.mongo_port)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
