"""Shared fixtures: one in-process twin per test session, driven through the real Google Cloud SDKs."""

from __future__ import annotations

import os
import uuid

import pytest

from edge.target import twin_target
from edge.twin import process
from edge.twin.server import Twin
from tests.support import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    TRAIN_LINE,
    TRAINING_IMAGE,
    commit,
    copy_project,
    run_job,
    use_fast_params,
)

os.environ.setdefault("DVC_NO_ANALYTICS", "1")  # tests run DVC directly too: no usage report, no daemon each time


@pytest.fixture(scope="session")
def twin(tmp_path_factory):
    """The twin (GCS storage + Vertex AI API) in this process, on free 127.0.0.1 ports."""
    with Twin(tmp_path_factory.mktemp("twin")) as running:
        yield running


_SESSION: dict = {}  # the session's target and bucket, once made: `_clients_back_on_the_session_twin` restores them


@pytest.fixture(scope="session")
def target(twin):
    """The twin as a Target; its env points this process's clients at the twin."""
    target = twin_target(twin.env)
    target.apply_env()
    _SESSION["target"] = target
    return target


@pytest.fixture(autouse=True)
def _clients_back_on_the_session_twin():
    """After each test, this process's clients point at the session's twin again (some tests point them at a twin
    of their own): a later module's fixtures must not upload to a twin that is gone (which test files share a
    process depends on pytest-xdist's scheduling)."""
    yield
    if "target" in _SESSION:
        _SESSION["target"].apply_env()
        if "bucket" in _SESSION:
            _SESSION["target"].init_vertex(staging_bucket=f"gs://{_SESSION['bucket']}/staging")


@pytest.fixture(scope="session")
def bucket(target):
    """A bucket on the twin for the session, made with google-cloud-storage."""
    bucket = target.storage_client().create_bucket("edge-tests")
    _SESSION["bucket"] = bucket.name
    return bucket


@pytest.fixture(scope="session")
def session_vertex(target, bucket):
    """The `google.cloud.aiplatform` module, initialised against the session's twin."""
    target.init_vertex(staging_bucket=f"gs://{bucket.name}/staging")
    from google.cloud import aiplatform

    return aiplatform


@pytest.fixture
def vertex(session_vertex, target, bucket):
    """`session_vertex`, initialised again for each test: other tests point the SDK elsewhere."""
    target.init_vertex(staging_bucket=f"gs://{bucket.name}/staging")
    return session_vertex


@pytest.fixture(scope="session")
def line_model_uri(session_vertex, bucket):
    """gs:// directory of a SavedModel trained by a real CustomJob (examples/train_line.py: y = 2x + 1)."""
    base = f"gs://{bucket.name}/runs/{uuid.uuid4().hex[:8]}"
    job = session_vertex.CustomJob.from_local_script(
        display_name="train-line",
        script_path=str(TRAIN_LINE),
        container_uri=TRAINING_IMAGE,
        args=["--steps", "200"],
        base_output_dir=base,
    )
    run_job(job)
    return f"{base}/model"


@pytest.fixture(scope="session")
def user_repo(tmp_path_factory):
    """A user's repository with fast training params (and the evaluation thresholds and deploy gate such a model
    passes); its twin is stopped at the end."""
    repo = copy_project(tmp_path_factory.mktemp("user-repo"))
    use_fast_params(repo)
    commit(repo, "fast params for tests")
    yield repo
    process.down(repo / ".edge" / "twin")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from Debian's `chromium` package, driven by Playwright (one per test module: Playwright's
    sync API cannot run twice at once)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: ./edge.sh installs Debian's chromium (or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()
