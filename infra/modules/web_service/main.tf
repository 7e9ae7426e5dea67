# The web page + API of services/ on Cloud Run, and the Docker repository its image is pushed to.
resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption; a customer-managed key adds a KMS key ring and rotation duties for public base images and a demo app.
  project       = var.project
  location      = var.region
  repository_id = var.repository
  format        = "DOCKER"
  description   = "edge container images (web service)"
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project
  location            = var.region
  name                = var.name
  ingress             = "INGRESS_TRAFFIC_ALL" # reachable by URL; every request still needs run.invoker (iam.tf)
  deletion_protection = false                 # `invoke infra.destroy` removes it

  template {
    service_account = var.service_account

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle = true
      }

      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "GOOGLE_CLOUD_REGION"
        value = var.region
      }
      env {
        name  = "EDGE_ENDPOINTS"
        value = jsonencode(var.endpoints)
      }
    }
  }

  lifecycle {
    # `invoke web.deploy` rolls out new images; Terraform sets the first one and leaves later ones alone.
    ignore_changes = [template[0].containers[0].image, client, client_version]
  }
}
