"""A fashion model trained and deployed on a user repository's twin (shared with tests/web and tests/lifecycle),
its version's monitoring reference, and real traffic sent through its endpoint, logged by the twin."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

from edge.project import Project, open_project
from tests.web.conftest import deployed_repo  # noqa: F401  (the session's trained and deployed repository)

WINDOW = 500  # requests per window, as in the calibration of the default thresholds


@dataclass
class Monitored:
    repo: Path
    project: Project
    endpoint: object  # the SDK's Endpoint
    table: str  # project.dataset.table of the request log
    x: np.ndarray  # the held-out test split: [N, 784] pixel values
    y: np.ndarray

    def send(self, images: np.ndarray) -> tuple[str, str]:
        """Sends each image as one predict request (8 keep-alive clients); returns the window (--since, --until)
        once every request of it is in the request log."""
        url = self.project.target.predict_url(self.endpoint.resource_name)
        local = threading.local()

        def post(image: np.ndarray) -> None:
            local.session = getattr(local, "session", None) or requests.Session()
            body = json.dumps({"instances": [image.tolist()]})
            local.session.post(url, data=body, headers={"Content-Type": "application/json"}).raise_for_status()

        start = time.time()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, images))
        window = (stamp(start), stamp(time.time() + 0.05))
        deadline = time.monotonic() + 30
        while self.count(*window) < len(images):
            assert time.monotonic() < deadline, "the requests were not all logged within 30 s"
            time.sleep(0.1)
        return window

    def count(self, since: str, until: str) -> int:
        """Logged requests of the window (0 while the table does not exist: the twin makes it as it logs)."""
        from google.api_core.exceptions import NotFound

        sql = f"SELECT COUNT(*) AS n FROM `{self.table}` WHERE logging_time >= '{since}' AND logging_time < '{until}'"
        try:
            return next(iter(self.project.target.bigquery_client().query_and_wait(sql)))["n"]
        except NotFound:
            return 0


def stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


def ensure_reference(project: Project, endpoint, x: np.ndarray) -> None:
    """The deployed version's reference, as the evaluate stage stores it; computed here (held-out test split, the
    endpoint's predictions) if the version has none, so these tests do not depend on the evaluate stage."""
    from edge.monitoring.monitor import served_models
    from edge.monitoring.reference import ReferenceError, load_reference, store_reference

    deployed = endpoint.list_models()[0]
    served = served_models(project, endpoint.gca_resource, [deployed.id])[deployed.id]
    try:
        load_reference(project.target.storage_client(), served.reference_uri)
        return
    except ReferenceError:
        pass
    url = project.target.predict_url(endpoint.resource_name)
    predictions = []
    for i in range(0, len(x), 1000):
        answer = requests.post(url, json={"instances": x[i : i + 1000].tolist()}, timeout=300)
        predictions += answer.json()["predictions"]
    artifact = project.vertex().Model(served.version_name).uri
    spec = project.spec(project.config.model("fashion"))
    store_reference(project.target.storage_client(), spec, artifact, x, predictions)


@pytest.fixture(scope="session")
def monitored(deployed_repo) -> Monitored:  # noqa: F811
    """The deployed fashion model with its reference, its endpoint, its request log and the test split."""
    from edge.monitoring.monitor import logged_table

    project = open_project(deployed_repo)
    found, table = logged_table(project, project.config.model("fashion"))
    endpoint = project.vertex().Endpoint(found.name)
    with np.load(deployed_repo / "data/prepared/fashion/test.npz") as data:
        x, y = data["x"].reshape(-1, 784).astype(np.int64), data["y"].astype(np.int64)
    ensure_reference(project, endpoint, x)
    return Monitored(deployed_repo, project, endpoint, table, x, y)


@pytest.fixture(scope="session")
def unshifted_window(monitored) -> tuple[str, str]:
    """A window of 500 held-out test images, as they are."""
    rng = np.random.default_rng(7)
    return monitored.send(monitored.x[rng.choice(len(monitored.x), WINDOW, replace=False)])


@pytest.fixture(scope="session")
def inverted_window(monitored) -> tuple[str, str]:
    """A window of 500 held-out test images, inverted (light background, dark garment)."""
    rng = np.random.default_rng(8)
    return monitored.send(255 - monitored.x[rng.choice(len(monitored.x), WINDOW, replace=False)])
