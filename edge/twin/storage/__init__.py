"""Offline Google Cloud Storage for the twin (gcp-storage-emulator, with GCS preconditions)."""

from edge.twin.storage.server import StorageServer

__all__ = ["StorageServer"]
