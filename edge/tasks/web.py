"""The fashion-web service (services/fashion-web): serve it locally, or roll a built image out to Cloud Run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Collection, Exit, task

from edge.tasks.common import TARGET_HELP, user_errors

SERVICE_DIR = Path("services/fashion-web")


def _service():
    """Makes the service's package (`fashion_web`, under services/fashion-web) importable."""
    if not (SERVICE_DIR / "fashion_web").is_dir():
        raise Exit(f"edge: no {SERVICE_DIR}/fashion_web here: run this from the edge project's root", code=1)
    path = str(SERVICE_DIR.resolve())
    if path not in sys.path:
        sys.path.insert(0, path)


def _target_name(target: str | None) -> str:
    from edge import config

    return target or os.environ.get("EDGE_TARGET") or config.load(Path(".")).target


@task(help={"port": "port on 127.0.0.1 (default 8080)", "target": TARGET_HELP})
def serve(c, port=8080, target=None):
    """Serve the fashion-web page and API on http://127.0.0.1:PORT against the current target."""
    from edge import config

    with user_errors():
        config.load(Path("."))  # a missing or broken edge.yaml fails here, in one line
    _service()
    from fashion_web.server import serve as run

    print(f"fashion-web on http://127.0.0.1:{port} (target {_target_name(target)}); Ctrl-C stops it")
    run(Path("."), target, host="127.0.0.1", port=int(port))


@task(
    help={
        "image": "built image URI to roll out (default: edge.yaml web.image), "
        "e.g. REGION-docker.pkg.dev/PROJECT/REPO/fashion-web:SHA",
        "target": "must be gcp (the twin has no Cloud Run: use `invoke web.serve`)",
    }
)
def deploy(c, image=None, target=None):
    """Roll a built fashion-web image out to the Cloud Run service `web.service` of edge.yaml (gcp only)."""
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
            "edge: pass --image URI (built from services/fashion-web/Dockerfile and pushed), "
            "or set web.image in edge.yaml",
            code=1,
        )
    _service()
    from fashion_web.cloud_run import WebDeployError, roll_out_image

    try:
        result = roll_out_image(cfg, image)
    except WebDeployError as exc:
        raise Exit(f"edge: {exc}", code=1) from None
    print(f"{result['service']} serves {result['image']} (revision {result['revision']}) at {result['uri']}")


ns = Collection("web", serve, deploy)
