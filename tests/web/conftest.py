"""fashion-web against a model trained and deployed on a user repository's twin (shared with tests/lifecycle)."""

from __future__ import annotations

import gzip
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from edge.project import open_project
from edge.twin import process
from tests.support import ROOT, copy_project, invoke

sys.path.insert(0, str(ROOT / "services" / "fashion-web"))

DATASET = Path("/usr/share/datasets/fashion-mnist")


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8).reshape(28, 28), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    """The first ten Fashion-MNIST test images (10x784 uint8) and labels, from Debian's dataset-fashion-mnist."""
    images, labels = DATASET / "t10k-images-idx3-ubyte.gz", DATASET / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        pytest.fail(
            f"{images} is missing: ./edge.sh installs Debian's dataset-fashion-mnist "
            "(or apt-get install dataset-fashion-mnist)"
        )
    with gzip.open(images) as f:
        pixels = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: 10 * 784].reshape(10, 784)
    with gzip.open(labels) as f:
        return pixels, np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:10]


@pytest.fixture(scope="session")
def deployed_repo(user_repo) -> Path:
    """`user_repo` with the fashion model trained and deployed on its twin; steps tests/lifecycle did are skipped
    (after its `invoke destroy`, they run again: train then retrains, since the registry is gone)."""
    entry = open_project(user_repo).state.read().model("fashion")
    if not entry.registry:
        for step in ("init", "data.seed", "train"):
            succeeded(invoke(user_repo, step))
    if not entry.deployed:
        succeeded(invoke(user_repo, "deploy"))
    return user_repo


@pytest.fixture(scope="session")
def raw_predictions(deployed_repo, test_images) -> list[dict]:
    """What the deployed model answers for the first three test images sent as raw 784-pixel instances."""
    from edge.deploy import predict_instances

    project = open_project(deployed_repo)
    pixels, _ = test_images
    return predict_instances(project, project.config.model(), pixels[:3].tolist())["predictions"]


@pytest.fixture(scope="session")
def undeployed_repo(tmp_path_factory) -> Path:
    """A second user repository after `invoke init` only: nothing trained or deployed. Its twin stops at the end."""
    repo = copy_project(tmp_path_factory.mktemp("undeployed-repo"))
    succeeded(invoke(repo, "init"))
    yield repo
    process.down(repo / ".edge" / "twin")


@contextmanager
def web_serve(repo: Path):
    """`invoke web.serve` in `repo` on a free port (127.0.0.1), as a user runs it; yields the base URL."""
    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "invoke", "web.serve", "--port", str(port)],
        cwd=repo,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "EDGE_HOME": str(repo / ".edge")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"web.serve exited {server.returncode}:\n{log.read()}")
            assert time.monotonic() < deadline, "web.serve did not answer /healthz within 60 s"
            try:
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
