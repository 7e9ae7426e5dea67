"""The web service of edge.yaml's `web.service` (services/<service>/): serve it locally, or roll a built image out to
Cloud Run."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from invoke import Collection, Exit, task

from edge.tasks.common import TARGET_HELP, user_errors

SERVICES = Path("services")


def _service(service: str, module: str) -> ModuleType:
    """`module` of the service's package (services/<service>/<service with underscores>/), imported."""
    folder, package = SERVICES / service, service.replace("-", "_")
    if not (folder / package).is_dir():
        raise Exit(
            f"edge: no {folder}/{package} here (edge.yaml web.service: {service}): run this from the project's root",
            code=1,
        )
    path = str(folder.resolve())
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(f"{package}.{module}")


def _target_name(target: str | None) -> str:
    from edge import config

    return target or os.environ.get("EDGE_TARGET") or config.load(Path(".")).target


@task(help={"port": "port on 127.0.0.1 (default 8080)", "target": TARGET_HELP})
def serve(c, port=8080, target=None):
    """Serve the web service's page and API on http://127.0.0.1:PORT against the current target."""
    from edge import config

    with user_errors():
        service = config.load(Path(".")).web.service  # a missing or broken edge.yaml fails here, in one line
    run = _service(service, "server").serve
    print(f"{service} on http://127.0.0.1:{port} (target {_target_name(target)}); Ctrl-C stops it")
    run(Path("."), target, host="127.0.0.1", port=int(port))


@task(
    help={
        "image": "built image URI to roll out (default: edge.yaml web.image), "
        "e.g. REGION-docker.pkg.dev/PROJECT/REPO/SERVICE:SHA",
        "target": "must be gcp (the twin has no Cloud Run: use `invoke web.serve`)",
    }
)
def deploy(c, image=None, target=None):
    """Roll a built image of the web service out to the Cloud Run service `web.service` of edge.yaml (gcp only)."""
    from edge import config

    with user_errors():
        cfg = config.load(Path("."))
        name = _target_name(target)
    if name != "gcp":
        raise Exit(
            f"edge: web.deploy rolls out to Cloud Run on the gcp target (this is {name}): "
            "locally run `invoke web.serve`",
            code=1,
        )
    image = image or cfg.web.image
    if not image:
        raise Exit(
            f"edge: pass --image URI (built from services/{cfg.web.service}/Dockerfile and pushed), "
            "or set web.image in edge.yaml",
            code=1,
        )
    cloud_run = _service(cfg.web.service, "cloud_run")
    try:
        result = cloud_run.roll_out_image(cfg, image)
    except cloud_run.WebDeployError as exc:
        raise Exit(f"edge: {exc}", code=1) from None
    print(f"{result['service']} serves {result['image']} (revision {result['revision']}) at {result['uri']}")


ns = Collection("web", serve, deploy)
