"""Reads gs:// objects from the twin's own storage, through google-cloud-storage."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from edge.twin.errors import InvalidArgument, NotFound


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, path = uri[len("gs://") :].partition("/")
    return bucket, path


class Artifacts:
    def __init__(self, storage_url: str, project: str):
        self.storage_url = storage_url
        self.project = project

    @cached_property
    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=self.project, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.storage_url}
        )

    def fetch_object(self, uri: str, target: Path) -> None:
        bucket, path = split_uri(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.client.bucket(bucket).blob(path).download_to_filename(str(target))

    def names_under(self, uri: str) -> list[str]:
        """The names of the objects under the `uri` prefix, relative to it."""
        bucket, prefix = split_uri(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        return [blob.name[len(prefix) :] for blob in self.client.list_blobs(bucket, prefix=prefix)]

    def fetch_tree(self, uri: str, target: Path) -> int:
        """Copies every object under the `uri` prefix into `target`; returns how many."""
        bucket, prefix = split_uri(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        count = 0
        for blob in self.client.list_blobs(bucket, prefix=prefix):
            relative = blob.name[len(prefix) :]
            if not relative or relative.endswith("/"):
                continue
            destination = (target / relative).resolve()
            if not destination.is_relative_to(target.resolve()):
                raise InvalidArgument(f"Object gs://{bucket}/{blob.name} would land outside the model folder.")
            destination.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(destination))
            count += 1
        if count == 0:
            raise NotFound(f"No objects under {uri}.")
        return count
