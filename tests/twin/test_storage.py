"""The storage twin, driven by the real google-cloud-storage and gcsfs clients."""

import io
import json
import random
import threading
import time
import uuid

import pytest
import requests
from google.api_core.exceptions import NotFound, NotModified, PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from edge.twin.storage import StorageServer

CHUNK = 256 * 1024  # the smallest chunk_size google-cloud-storage accepts


def client_for(server: StorageServer) -> storage.Client:
    return storage.Client(
        project="edge-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": server.url},
    )


@pytest.fixture(scope="module")
def client(storage_server):
    """A google-cloud-storage client pointed at the module's storage twin."""
    return client_for(storage_server)


@pytest.fixture
def bucket(client):
    """A fresh, empty bucket for one test."""
    return client.create_bucket(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def blob(bucket):
    """An object holding b"v1"; its generation is loaded."""
    blob = bucket.blob("state.json")
    blob.upload_from_string(b"v1")
    return blob


def resumable_upload(blob: storage.Blob, data: bytes, **preconditions) -> None:
    """Upload in CHUNK-sized pieces: a file of unknown size always goes resumable."""
    blob.chunk_size = CHUNK
    blob.upload_from_file(io.BytesIO(data), **preconditions)


def test_upload_with_a_stale_generation_is_rejected(bucket, blob):
    stale = blob.generation
    bucket.blob(blob.name).upload_from_string(b"v2", if_generation_match=stale)

    with pytest.raises(PreconditionFailed):
        bucket.blob(blob.name).upload_from_string(b"v3", if_generation_match=stale)
    assert bucket.blob(blob.name).download_as_bytes() == b"v2"


def test_resumable_upload_with_a_stale_generation_is_rejected(bucket, blob):
    with pytest.raises(PreconditionFailed, match="uploadType=resumable"):
        resumable_upload(bucket.blob(blob.name), b"x" * (2 * CHUNK + 1), if_generation_match=1)
    assert bucket.blob(blob.name).download_as_bytes() == b"v1"


def test_resumable_upload_is_rejected_if_the_object_changes_before_it_completes(bucket, blob):
    session_url = bucket.blob(blob.name).create_resumable_upload_session(if_generation_match=blob.generation)
    bucket.blob(blob.name).upload_from_string(b"written meanwhile")

    response = requests.put(session_url, data=b"late", timeout=10)

    assert response.status_code == 412
    assert bucket.blob(blob.name).download_as_bytes() == b"written meanwhile"


def test_resumable_upload_with_the_current_generation_succeeds(bucket, blob):
    data = b"y" * (2 * CHUNK + 1)
    resumable_upload(bucket.blob(blob.name), data, if_generation_match=blob.generation)
    assert bucket.blob(blob.name).download_as_bytes() == data


def test_upload_with_generation_zero_is_rejected_when_the_object_exists(bucket, blob):
    with pytest.raises(PreconditionFailed):
        bucket.blob(blob.name).upload_from_string(b"v2", if_generation_match=0)


def test_upload_with_generation_zero_creates_a_missing_object(bucket):
    created = bucket.blob("new")
    created.upload_from_string(b"first", if_generation_match=0)
    assert created.generation > 0


def test_upload_with_the_current_generation_replaces_the_object(bucket, blob):
    replacement = bucket.blob(blob.name)
    replacement.upload_from_string(b"v2", if_generation_match=blob.generation)

    assert replacement.generation > blob.generation
    assert replacement.metageneration == 1
    assert replacement.download_as_bytes() == b"v2"


def test_delete_with_a_stale_generation_is_rejected(bucket, blob):
    with pytest.raises(PreconditionFailed):
        blob.delete(if_generation_match=blob.generation - 1)
    blob.delete(if_generation_match=blob.generation)
    assert bucket.get_blob(blob.name) is None


def test_patch_with_a_stale_metageneration_is_rejected(blob):
    blob.metadata = {"owner": "a"}
    blob.patch(if_metageneration_match=1)

    blob.metadata = {"owner": "b"}
    with pytest.raises(PreconditionFailed):
        blob.patch(if_metageneration_match=1)


def test_patch_with_the_current_metageneration_increments_it(bucket, blob):
    blob.metadata = {"owner": "a"}
    blob.patch(if_metageneration_match=blob.metageneration)

    assert bucket.get_blob(blob.name).metageneration == 2


def test_patch_with_a_stale_generation_is_rejected(blob):
    blob.metadata = {"owner": "a"}
    with pytest.raises(PreconditionFailed):
        blob.patch(if_generation_match=blob.generation + 1)


def test_copy_onto_an_object_with_a_stale_generation_is_rejected(bucket, blob):
    source = bucket.blob("source")
    source.upload_from_string(b"copied")

    with pytest.raises(PreconditionFailed):
        bucket.copy_blob(source, bucket, blob.name, if_generation_match=blob.generation - 1)
    assert bucket.blob(blob.name).download_as_bytes() == b"v1"


def test_copy_from_a_stale_source_generation_is_rejected(bucket, blob):
    with pytest.raises(PreconditionFailed):
        bucket.copy_blob(blob, bucket, "copy", if_source_generation_match=blob.generation - 1)
    assert bucket.get_blob("copy") is None


def test_rewrite_onto_an_object_with_a_stale_generation_is_rejected(bucket, blob):
    source = bucket.blob("source")
    source.upload_from_string(b"rewritten")

    with pytest.raises(PreconditionFailed):
        bucket.blob(blob.name).rewrite(source, if_generation_match=blob.generation - 1)


def test_compose_onto_an_object_with_a_stale_generation_is_rejected(bucket, blob):
    part = bucket.blob("part")
    part.upload_from_string(b"part")

    with pytest.raises(PreconditionFailed):
        bucket.blob(blob.name).compose([part, part], if_generation_match=blob.generation - 1)


def test_download_with_a_stale_generation_is_rejected(bucket, blob):
    bucket.blob(blob.name).upload_from_string(b"v2")

    with pytest.raises(PreconditionFailed):
        bucket.blob(blob.name).download_as_bytes(if_generation_match=blob.generation)


def test_metadata_read_unless_generation_matches_is_not_modified(bucket, blob):
    with pytest.raises(NotModified):
        bucket.get_blob(blob.name, if_generation_not_match=blob.generation)


def test_download_reports_the_object_generation(bucket, blob):
    fresh = bucket.blob(blob.name)
    fresh.download_as_bytes()
    assert fresh.generation == blob.generation


def test_generations_increase_even_within_one_clock_tick(bucket, monkeypatch):
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000)
    first, second = bucket.blob("a"), bucket.blob("a")
    first.upload_from_string(b"1")
    second.upload_from_string(b"2")
    assert second.generation > first.generation


def test_precondition_failure_answers_with_the_gcs_error_body(storage_server, bucket, blob):
    response = requests.post(
        f"{storage_server.url}/upload/storage/v1/b/{bucket.name}/o",
        params={"uploadType": "media", "name": blob.name, "ifGenerationMatch": "0"},
        data=b"v2",
        timeout=10,
    )

    assert response.status_code == 412
    error = response.json()["error"]
    assert error["code"] == 412
    assert error["message"] == "At least one of the pre-conditions you specified did not hold."
    assert error["errors"][0]["reason"] == "conditionNotMet"
    assert error["errors"][0]["location"] == "If-Match"


def test_a_missing_object_error_names_the_object(bucket):
    with pytest.raises(NotFound, match=f"No such object: {bucket.name}/absent"):
        bucket.blob("absent").download_as_bytes()


def test_a_missing_bucket_error_says_so(client):
    with pytest.raises(NotFound, match="bucket does not exist"):
        client.bucket("no-such-bucket").blob("x").reload()


def test_health_path_answers_ok(storage_server):
    response = requests.get(f"{storage_server.url}/_twin/health", timeout=10)
    assert response.json() == {"status": "ok"}


def test_server_listens_on_loopback_by_default(storage_server):
    assert storage_server.url == f"http://127.0.0.1:{storage_server.port}"


def test_concurrent_read_modify_writes_lose_no_update(client, bucket):
    """8 writers x 25 increments of one JSON counter, each guarded by ifGenerationMatch."""
    counter = bucket.blob("counter.json")
    counter.upload_from_string(json.dumps({"n": 0}), if_generation_match=0)

    def increment_25_times():
        blob = client.bucket(bucket.name).blob(counter.name)
        for _ in range(25):
            for attempt in range(1000):
                n = json.loads(blob.download_as_bytes())["n"]
                try:
                    blob.upload_from_string(json.dumps({"n": n + 1}), if_generation_match=blob.generation)
                    break
                except PreconditionFailed:
                    time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))

    writers = [threading.Thread(target=increment_25_times) for _ in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    assert json.loads(counter.download_as_bytes()) == {"n": 200}


def test_data_survives_a_restart_on_the_same_data_dir(tmp_path):
    with StorageServer(data_dir=tmp_path) as first:
        written = client_for(first).create_bucket("kept").blob("dir/object.txt")
        written.upload_from_string(b"persisted")

    with StorageServer(data_dir=tmp_path) as second:
        read = client_for(second).bucket("kept").get_blob("dir/object.txt")
        assert read.generation == written.generation
        assert read.download_as_bytes() == b"persisted"


@pytest.fixture
def gcsfs_filesystem(storage_server, monkeypatch):
    """A gcsfs filesystem on the twin, as DVC makes it with HNS support off.

    gcsfs reads GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT at import, and picks
    ``gcsfs.core.GCSFileSystem`` as ``gcsfs.GCSFileSystem`` when it is false; naming
    that class keeps this test right if gcsfs was imported earlier in the session.
    """
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    import gcsfs.core

    return gcsfs.core.GCSFileSystem(endpoint_url=storage_server.url, token="anon", skip_instance_cache=True)


def test_gcsfs_puts_lists_and_gets_a_file(gcsfs_filesystem, bucket, tmp_path):
    local = tmp_path / "data.csv"
    local.write_text("a,b\n1,2\n")

    gcsfs_filesystem.put(str(local), f"{bucket.name}/dvc/data.csv")

    assert gcsfs_filesystem.ls(f"{bucket.name}/dvc") == [f"{bucket.name}/dvc/data.csv"]
    gcsfs_filesystem.get(f"{bucket.name}/dvc/data.csv", str(tmp_path / "back.csv"))
    assert (tmp_path / "back.csv").read_text() == "a,b\n1,2\n"
