"""Vertex state of one twin: resources by name, ids, operations; one JSON file on disk."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from edge.twin.errors import InvalidArgument, NotFound, TwinError, Unavailable, rpc_status

TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."
COLLECTIONS = (
    "customJobs",
    "models",
    "endpoints",
    "operations",
    "modelEvaluations",
    "trainingPipelines",
    "hyperparameterTuningJobs",
    "batchPredictionJobs",
)


def now() -> str:
    """The current time in RFC 3339, as Google's APIs write it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parent_of(name: str) -> str:
    """`projects/p/locations/l` of any resource name below it."""
    parts = name.split("/")
    if len(parts) < 4 or parts[0] != "projects" or parts[2] != "locations":
        raise InvalidArgument(f"Invalid resource name: {name}")
    return "/".join(parts[:4])


class Store:
    """Holds every resource as the REST JSON it is served as, saved atomically after each change.

    Callers hold `store.lock` around read-modify-write sequences and call `save()` after.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.lock = threading.RLock()
        self.data = self._empty()
        if path is not None and path.exists():
            self.data = {**self.data, **json.loads(path.read_text())}

    @staticmethod
    def _empty() -> dict:
        return {"nextId": 1000000001, **{c: {} for c in COLLECTIONS}}

    def new_id(self) -> str:
        with self.lock:
            value = self.data["nextId"]
            self.data["nextId"] = value + 1
            return str(value)

    def collection(self, kind: str) -> dict:
        return self.data[kind]

    def get(self, kind: str, name: str, label: str) -> dict:
        try:
            return self.data[kind][name]
        except KeyError:
            raise NotFound(f"{label} {name} not found.") from None

    def list(self, kind: str, parent: str) -> list[dict]:
        with self.lock:
            return [r for n, r in self.data[kind].items() if n.startswith(parent + "/")]

    def save(self) -> None:
        if self.path is None:
            return
        with self.lock:
            text = json.dumps(self.data, indent=1)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.path)

    def reset(self) -> None:
        with self.lock:
            self.data = self._empty()
            self.save()


class Operations:
    """Long-running operations, named below the resource they act on."""

    def __init__(self, store: Store):
        self.store = store

    def start(self, resource: str, metadata_type: str) -> dict:
        op = {
            "name": f"{resource}/operations/{self.store.new_id()}",
            "metadata": {
                "@type": TYPE_PREFIX + metadata_type,
                "genericMetadata": {"createTime": now(), "updateTime": now()},
            },
            "done": False,
        }
        with self.store.lock:
            self.store.collection("operations")[op["name"]] = op
            self.store.save()
        return op

    def finish(
        self, op: dict, response_type: str | None = None, response: dict | None = None, error: TwinError | None = None
    ) -> dict:
        with self.store.lock:
            op["done"] = True
            op["metadata"]["genericMetadata"]["updateTime"] = now()
            if error is not None:
                op["error"] = rpc_status(error)
            elif response_type == "Empty":
                op["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty", "value": {}}
            else:
                op["response"] = {"@type": TYPE_PREFIX + response_type, **(response or {})}
            self.store.save()
        return op

    def completed(self, resource: str, metadata_type: str, response_type: str, response: dict | None = None) -> dict:
        """An operation that is done as soon as it is created."""
        return self.finish(self.start(resource, metadata_type), response_type, response)

    def get(self, name: str) -> dict:
        return self.store.get("operations", name, "Operation")

    def abandon(self) -> None:
        """Ends the operations a stopped twin left running, with an error a client can act on."""
        for op in [op for op in self.store.collection("operations").values() if not op["done"]]:
            self.finish(op, error=Unavailable("The twin stopped before this operation finished; try again."))
