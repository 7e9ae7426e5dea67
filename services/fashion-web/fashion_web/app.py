"""The ASGI app: the page, `POST /api/classify` and `GET /healthz`, calling the model's endpoint through edge."""

from __future__ import annotations

import html
import json
import logging
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fashion_web.preprocess import ImageRejected, ImageTooLarge, image_to_pixels, validate_pixels

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
log = logging.getLogger("fashion_web")


class ModelUnavailable(RuntimeError):
    """The endpoint cannot answer (not deployed, unreachable, no credentials); the message says what to run."""


class BodyTooLarge(Exception):
    pass


class ModelClient:
    """The project (opened on first use, once) and its model's endpoint, through `edge.deploy.predict_instances`."""

    def __init__(self, root: Path, target: str | None = None, model: str | None = None):
        self.root, self.target, self.model = Path(root), target, model
        self._project = None
        self._lock = threading.Lock()

    def _open(self):
        from edge.project import open_project

        with self._lock:
            if self._project is None:
                self._project = open_project(self.root, self.target)
            return self._project

    def labels(self) -> list[str]:
        """The model's class names (its models/<name>/model.yaml), read without reaching the target; none when
        the project cannot be read (the API then says why)."""
        from edge import config
        from edge.errors import EdgeError
        from edge.models import load_spec

        try:
            loaded = config.load(self.root)
            return list(load_spec(loaded.root.resolve(), loaded.model(self.model)).labels)
        except EdgeError:  # the page still works; /api/classify says what is wrong with the project
            return []

    def classify(self, pixels: list) -> dict:
        """{class_id, class_name, probability, probabilities, model_version} for one 784-pixel instance."""
        from edge.deploy import predict_instances

        try:
            project = self._open()
            result = predict_instances(project, project.config.model(self.model), [pixels])
        except Exception as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        row = result["predictions"][0]
        return {
            "class_id": row["class_id"],
            "class_name": row["class_name"],
            "probability": row["probability"],
            "probabilities": row["probabilities"],
            "model_version": result["version"],
        }

    def _unavailable(self, exc: Exception) -> ModelUnavailable | None:
        """`exc` as ModelUnavailable with a one-line message saying what to run; None when it is a bug."""
        from google.api_core.exceptions import GoogleAPICallError
        from google.auth.exceptions import DefaultCredentialsError, TransportError

        from edge.deploy import DeployError
        from edge.errors import EdgeError

        if isinstance(exc, EdgeError) and not isinstance(exc, DeployError):
            return ModelUnavailable(str(exc))
        if isinstance(exc, DefaultCredentialsError):
            return ModelUnavailable(
                "no Google Cloud credentials for the gcp target: run `gcloud auth "
                "application-default login` (on Cloud Run, its service account has them)"
            )
        if isinstance(exc, DeployError):
            message = str(exc)
        elif isinstance(exc, GoogleAPICallError):
            message = f"the target answered {exc.code}: {exc.message}"
        elif isinstance(exc, (OSError, TransportError)):  # requests' ConnectionError is an OSError
            with self._lock:
                self._project = None  # reopen next time: on the twin that restarts it
            message = f"the endpoint is unreachable ({type(exc).__name__})"
        else:
            return None
        if "invoke " not in message:
            message += "; check `invoke endpoint`, and run `invoke deploy` if nothing is deployed"
        return ModelUnavailable(message)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request) -> Request:
    """`request` with its body read, refusing (BodyTooLarge) more than MAX_BODY_BYTES, declared or sent."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    received = 0

    async def capped():
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > MAX_BODY_BYTES:
            raise BodyTooLarge
        return message

    capped_request = Request(request.scope, capped)
    await capped_request.body()
    return capped_request


async def _pixels_from(request: Request) -> list:
    """The 784 pixels of a multipart upload, a raw PNG/JPEG body, or JSON {"pixels": [...]}."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            payload = await request.json()
        except ValueError:
            raise ImageRejected("the body is not valid JSON") from None
        if not isinstance(payload, dict) or "pixels" not in payload:
            raise ImageRejected('JSON must be {"pixels": [784 numbers 0..255]}')
        return validate_pixels(payload["pixels"])
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise ImageRejected('send the image as a multipart file field named "image"')
        data = await upload.read()
    elif content_type in IMAGE_TYPES:
        data = await request.body()
    else:
        raise HTTPException(
            415,
            f"unsupported content type {content_type or '(none)'!r}: send multipart/form-data "
            "with an image field, image/png, image/jpeg or application/json",
        )
    return await run_in_threadpool(image_to_pixels, data)


def create_app(project_root: Path, target: str | None = None, model: str | None = None) -> Starlette:
    """The fashion-web app for the edge project at `project_root`, on `target` (default: edge.yaml's).

    The project is opened on the first classification (on the twin that starts the twin), not here.
    """
    client = ModelClient(project_root, target, model)
    page = (
        (STATIC / "index.html")
        .read_text()
        .replace("{{class_names}}", html.escape(json.dumps(client.labels()), quote=True))
    )

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def classify(request: Request) -> JSONResponse:
        try:
            request = await _read_body(request)
            pixels = await _pixels_from(request)
        except BodyTooLarge:
            return _error(413, f"the request is over {MAX_BODY_BYTES // (1024 * 1024)} MB: send a smaller image")
        except ImageTooLarge as exc:
            return _error(413, str(exc))
        except ImageRejected as exc:
            return _error(400, str(exc))
        try:
            return JSONResponse(await run_in_threadpool(client.classify, pixels))
        except ModelUnavailable as exc:
            log.warning("classify: %s", exc)
            return _error(503, str(exc))

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, exc.detail)

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/api/classify", classify, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.client = client
    return app
