"""The storage backend: gcp-storage-emulator's Storage with GCS's write semantics."""

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.storage import Storage

from edge.twin.storage.preconditions import Preconditions

META_DIR = "_objectmeta"


class TwinStorage(Storage):
    """Buckets and objects under ``data_dir``, as gcp-storage-emulator keeps them, except:

    - ``lock`` (an RLock) must be held around every use; the server holds it per request.
    - Inside ``guarded(preconditions)`` the first write to an object (upload, resumable
      session start, copy/compose destination, patch, delete) raises PreconditionFailed
      unless the preconditions hold for that object at that moment.
    - Every new object generation is greater than all earlier ones (also across restarts)
      and starts at metageneration 1.
    - Resumable upload ids are unique (the emulator's are only per microsecond).
    - ``get_file_obj`` returns a copy, so a handler cannot change an object without a write.
    - Object metadata is one JSON file per object under ``META_DIR``; ``.meta`` keeps the
      rest (buckets, resumable sessions, soft deletes, IAM) and is rewritten only when it
      changes, so a write costs the same however many objects the bucket holds.
    """

    def __init__(self, data_dir: Path, project_number: str | None = None) -> None:
        self.lock = threading.RLock()
        self._guard: Preconditions | None = None
        self._dirty: set = set()
        self._meta_written: bytes | None = None
        super().__init__(data_dir=str(data_dir), project_number=project_number)
        self._last_generation = max((int(obj.get("generation") or 0) for obj in self._all_objects()), default=0)

    def live_object(self, bucket_name: str, name: str) -> dict | None:
        """The live object's resource (not a copy), or None."""
        return self.objects.get(bucket_name, {}).get(name)

    @contextmanager
    def guarded(self, preconditions: Preconditions) -> Iterator[None]:
        """Check ``preconditions`` at the first object write made inside the block."""
        self._guard = preconditions or None
        try:
            yield
        finally:
            self._guard = None

    def get_file_obj(self, bucket_name, file_name):
        return deepcopy(super().get_file_obj(bucket_name, file_name))

    def create_file(self, bucket_name, file_name, content, file_obj, file_id=None):
        if bucket_name not in self.buckets:
            raise NotFound
        self._enforce_guard(bucket_name, file_name)
        generation = self._next_generation()
        file_obj["generation"] = str(generation)
        file_obj["metageneration"] = "1"
        file_obj["id"] = f"{bucket_name}/{file_name}/{generation}"
        if file_obj.get("mediaLink"):
            file_obj["mediaLink"] = re.sub(r"generation=\d+", f"generation={generation}", file_obj["mediaLink"])
        self._dirty.add((bucket_name, file_name))
        super().create_file(bucket_name, file_name, content, file_obj, file_id)

    def create_resumable_upload(self, bucket_name, file_name, file_obj):
        if bucket_name not in self.buckets:
            raise NotFound
        self._enforce_guard(bucket_name, file_name)
        upload_id = f"{bucket_name}:{file_name}:{uuid.uuid4().hex}"
        self.resumable[upload_id] = file_obj
        self._write_config_to_file()
        return upload_id

    def patch_object(self, bucket_name, file_name, file_obj):
        self._enforce_guard(bucket_name, file_name)
        self._dirty.add((bucket_name, file_name))
        super().patch_object(bucket_name, file_name, file_obj)

    def delete_file(self, bucket_name, file_name):
        if self.live_object(bucket_name, file_name) is not None:
            self._enforce_guard(bucket_name, file_name)
            self._dirty.add((bucket_name, file_name))
        super().delete_file(bucket_name, file_name)

    def wipe(self, keep_buckets=False):
        self._dirty.clear()
        self._meta_written = None
        super().wipe(keep_buckets)

    def _enforce_guard(self, bucket_name: str, file_name: str) -> None:
        guard, self._guard = self._guard, None
        if guard:
            guard.check(self.live_object(bucket_name, file_name))

    def _next_generation(self) -> int:
        self._last_generation = max(time.time_ns(), self._last_generation + 1)
        return self._last_generation

    def _all_objects(self) -> Iterator[dict]:
        for by_name in self.objects.values():
            yield from by_name.values()
        for by_name in self.soft_deleted.values():
            for generations in by_name.values():
                yield from generations.values()

    @staticmethod
    def _meta_path(bucket_name: str, file_name: str) -> str:
        digest = hashlib.sha256(file_name.encode("utf-8")).hexdigest()
        return f"{META_DIR}/{bucket_name}/{digest}.json"

    def _read_config_from_file(self):
        super()._read_config_from_file()
        # Objects listed in .meta (a data dir written by the stock emulator) move to
        # per-object files at the next write.
        self._dirty = {(b, name) for b, by_name in self.objects.items() for name in by_name}
        try:
            bucket_names = self._store.listdir(META_DIR)
        except FileNotFoundError:
            return
        for bucket_name in filter(self.buckets.__contains__, bucket_names):
            by_name = self.objects.setdefault(bucket_name, {})
            for entry in self._store.listdir(f"{META_DIR}/{bucket_name}"):
                raw = self._store.read_bytes(f"{META_DIR}/{bucket_name}/{entry}")
                obj = json.loads(raw)
                by_name[obj["name"]] = obj

    def _write_config_to_file(self):
        for bucket_name, file_name in self._dirty:
            path = self._meta_path(bucket_name, file_name)
            obj = self.live_object(bucket_name, file_name)
            if obj is not None:
                self._store.write_bytes(path, json.dumps(obj).encode("utf-8"))
            elif self._store.exists_file(path):
                self._store.remove_file(path)
        self._dirty.clear()
        meta = json.dumps(
            {
                "buckets": self.buckets,
                "resumable": self.resumable,
                "bucket_iam_policies": self.bucket_iam_policies,
                "soft_deleted": self.soft_deleted,
            },
            indent=1,
        ).encode("utf-8")
        if meta != self._meta_written:
            self._store.write_bytes(".meta", meta)
            self._meta_written = meta
