"""Fixtures shared by the twin's tests."""

import pytest

from edge.twin.storage import StorageServer


@pytest.fixture(scope="module")
def storage_server(tmp_path_factory):
    """A running StorageServer on a free 127.0.0.1 port, persisting under a fresh dir."""
    with StorageServer(data_dir=tmp_path_factory.mktemp("storage")) as server:
        yield server
