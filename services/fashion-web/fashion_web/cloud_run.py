"""Rolls a built fashion-web image out to its Cloud Run service (gcp target), through google-cloud-run."""

from __future__ import annotations

import re

from edge.config import Config
from edge.errors import EdgeError

# An image URI such as us-central1-docker.pkg.dev/PROJECT/edge/fashion-web:SHA (as infra's web_image validation)
IMAGE = re.compile(r"[a-z0-9.-]+(:[0-9]+)?/[^\s]+")


class WebDeployError(EdgeError):
    """The rollout could not go on; the message is one line that says what to do."""


def service_name(config: Config) -> str:
    return f"projects/{config.project}/locations/{config.region}/services/{config.web.service}"


def roll_out_image(config: Config, image: str, timeout: float = 900) -> dict:
    """Sets the image of the Cloud Run service `web.service` and waits for the new revision to serve.

    The service itself (account, env, IAM) is Terraform's (infra/modules/web_service); only the image changes.
    """
    if not IMAGE.fullmatch(image or ""):
        raise WebDeployError(
            f"--image must be an image URI such as REGION-docker.pkg.dev/PROJECT/REPO/fashion-web:TAG, got {image!r}"
        )
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import run_v2

    name = service_name(config)
    try:
        client = run_v2.ServicesClient()
        service = client.get_service(name=name)
        service.template.containers[0].image = image
        updated = client.update_service(service=service).result(timeout=timeout)
    except DefaultCredentialsError:
        raise WebDeployError(
            "no Google Cloud credentials: run `gcloud auth application-default login` "
            "(or set GOOGLE_APPLICATION_CREDENTIALS to a credential file)"
        ) from None
    except exceptions.NotFound:
        raise WebDeployError(
            f"Cloud Run service {name} does not exist: run `invoke init --target gcp` (Terraform creates it)"
        ) from None
    except exceptions.PermissionDenied as exc:
        raise WebDeployError(f"not allowed to update {name}: {exc.message}") from None
    except exceptions.GoogleAPICallError as exc:
        raise WebDeployError(f"Cloud Run refused the rollout of {image}: {exc.message}") from None
    return {"service": updated.name, "uri": updated.uri, "revision": updated.latest_ready_revision, "image": image}
