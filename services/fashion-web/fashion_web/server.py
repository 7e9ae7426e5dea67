"""Runs the app with uvicorn: `invoke web.serve` on 127.0.0.1, the container on 0.0.0.0:$PORT."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PORT = 8080


def serve(project_root: Path, target: str | None = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serves fashion-web for the project at `project_root` until interrupted."""
    import uvicorn

    from fashion_web.app import create_app

    uvicorn.run(
        create_app(project_root, target), host=host, port=port, log_level="info", access_log=False, server_header=False
    )
