"""The Model Registry: models with numbered versions, aliases and labels."""

from __future__ import annotations

import copy
import re

from edge.twin.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from edge.twin.vertex import filters
from edge.twin.vertex.evaluations import forget_evaluations
from edge.twin.vertex.store import Operations, Store, now, parent_of

_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]")
_MUTABLE = ("displayName", "description", "labels", "versionDescription")


def _check_aliases(aliases: list[str]) -> None:
    for alias in aliases:
        if not _ALIAS.fullmatch(alias.lstrip("-")):
            raise InvalidArgument(
                f"Invalid version alias {alias!r}: use lower-case letters, digits and dashes, "
                "starting with a letter (it must not look like a version number)."
            )


class ModelRegistry:
    """Models keyed by name; each holds its versions in upload order."""

    def __init__(self, store: Store, operations: Operations):
        self.store = store
        self.operations = operations

    # lookups
    def _entry(self, model_name: str) -> dict:
        return self.store.get("models", model_name, "Model")

    def resolve(self, name: str) -> dict:
        """The version `name` points at: `ID` (the default version), `ID@N` or `ID@alias`."""
        model_name, _, ref = name.partition("@")
        versions = self._entry(model_name)["versions"]
        ref = ref or "default"
        for version in versions:
            if version["versionId"] == ref or ref in version["versionAliases"]:
                return version
        raise NotFound(f"Model {name} not found (no version or alias {ref!r}).")

    def get(self, name: str) -> dict:
        return self.resolve(name)

    def list(self, parent: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        with self.store.lock:
            entries = self.store.list("models", parent)
            defaults = [self.resolve(e["versions"][0]["name"]) for e in entries]
        return [m for m in defaults if filters.matches(m, terms)]

    def list_versions(self, name: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        return [v for v in self._entry(name.partition("@")[0])["versions"] if filters.matches(v, terms)]

    # changes
    def upload(self, parent: str, body: dict) -> dict:
        model = body.get("model")
        if not isinstance(model, dict) or not model.get("displayName"):
            raise InvalidArgument("model.display_name is required.")
        artifact = model.get("artifactUri", "")
        if artifact and not artifact.startswith("gs://"):
            raise InvalidArgument(f"model.artifact_uri must be a gs:// URI, got {artifact!r}.")
        aliases = list(model.get("versionAliases", []))
        _check_aliases(aliases)
        parent_model = body.get("parentModel")
        with self.store.lock:
            if parent_model:
                if parent_of(parent_model) != parent:
                    raise InvalidArgument(f"parent_model {parent_model} is not under {parent}.")
                entry = self._entry(parent_model.partition("@")[0])
                name = parent_model.partition("@")[0]
            else:
                model_id = body.get("modelId") or self.store.new_id()
                name = f"{parent}/models/{model_id}"
                if name in self.store.collection("models"):
                    raise AlreadyExists(f"Model {name} already exists; upload a version with parent_model.")
                entry = {"versions": [], "nextVersion": 1}
                self.store.collection("models")[name] = entry
            version_id = str(entry["nextVersion"])
            entry["nextVersion"] += 1
            if not entry["versions"] and "default" not in aliases:
                aliases.insert(0, "default")
            self._take_aliases(entry, aliases)
            stamp = now()
            first = entry["versions"][0] if entry["versions"] else None
            version = {
                **{k: v for k, v in model.items() if k not in ("name", "versionId", "versionAliases")},
                "name": name,
                "versionId": version_id,
                "versionAliases": aliases,
                "createTime": first["createTime"] if first else stamp,
                "updateTime": stamp,
                "versionCreateTime": stamp,
                "versionUpdateTime": stamp,
                "etag": f"v{version_id}-{stamp}",
                "labels": model.get("labels", {}),
                "deployedModels": [],
                "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"],
            }
            entry["versions"].append(version)
            self.store.save()
        return self.operations.completed(
            name,
            "UploadModelOperationMetadata",
            "UploadModelResponse",
            {"model": name, "modelVersionId": version_id},
        )

    @staticmethod
    def _take_aliases(entry: dict, aliases: list[str]) -> None:
        """An alias names one version at a time: moving it removes it from the others."""
        for other in entry["versions"]:
            other["versionAliases"] = [a for a in other["versionAliases"] if a not in aliases]

    def merge_aliases(self, name: str, body: dict) -> dict:
        changes = body.get("versionAliases", [])
        _check_aliases(changes)
        with self.store.lock:
            version = self.resolve(name)
            entry = self._entry(version["name"])
            added = [a for a in changes if not a.startswith("-")]
            removed = {a[1:] for a in changes if a.startswith("-")}
            if "default" in removed:
                raise FailedPrecondition("The default alias cannot be removed; move it to another version instead.")
            self._take_aliases(entry, added)
            kept = [a for a in version["versionAliases"] if a not in removed]
            version["versionAliases"] = kept + [a for a in added if a not in kept]
            version["versionUpdateTime"] = now()
            self.store.save()
            return version

    def patch(self, name: str, body: dict, update_mask: str | None) -> dict:
        fields = [f.strip() for f in (update_mask or "").split(",") if f.strip()]
        if not fields:
            raise InvalidArgument("update_mask is required.")
        for field in fields:
            if field not in _MUTABLE and field not in ("display_name", "version_description"):
                raise InvalidArgument(f"Field {field!r} cannot be updated; updatable: {', '.join(_MUTABLE)}.")
        with self.store.lock:
            version = self.resolve(name)
            for field in fields:
                key = filters._camel(field)
                if key in body:
                    version[key] = copy.deepcopy(body[key])
            version["updateTime"] = version["versionUpdateTime"] = now()
            self.store.save()
            return version

    def delete(self, name: str) -> dict:
        with self.store.lock:
            entry = self._entry(name)
            deployed = [d["endpoint"] for v in entry["versions"] for d in v["deployedModels"]]
            if deployed:
                raise FailedPrecondition(
                    f'The Model "{name}" is deployed or being deployed at the following '
                    f"Endpoint(s): {', '.join(sorted(set(deployed)))}. Undeploy it first."
                )
            del self.store.collection("models")[name]
            forget_evaluations(self.store, name)
            self.store.save()
        return self.operations.completed(name, "DeleteOperationMetadata", "Empty")

    def delete_version(self, name: str) -> dict:
        with self.store.lock:
            version = self.resolve(name)
            entry = self._entry(version["name"])
            if version["deployedModels"]:
                endpoints = ", ".join(d["endpoint"] for d in version["deployedModels"])
                raise FailedPrecondition(f"Model version {name} is deployed at {endpoints}. Undeploy it first.")
            if "default" in version["versionAliases"] and len(entry["versions"]) > 1:
                raise FailedPrecondition(
                    f"Model version {name} is the default version; move the default alias before deleting it."
                )
            entry["versions"].remove(version)
            forget_evaluations(self.store, version["name"], version["versionId"])
            if not entry["versions"]:
                del self.store.collection("models")[version["name"]]
            self.store.save()
        return self.operations.completed(version["name"], "DeleteOperationMetadata", "Empty")

    # bookkeeping for endpoints
    def mark_deployed(self, name: str, endpoint: str, deployed_model_id: str) -> None:
        with self.store.lock:
            self.resolve(name)["deployedModels"].append({"endpoint": endpoint, "deployedModelId": deployed_model_id})
            self.store.save()

    def forget_deployments_except(self, live: set[str]) -> None:
        """Drops the deployment records that no endpoint lists (deploys a stopped twin did not finish)."""
        with self.store.lock:
            for entry in self.store.collection("models").values():
                for version in entry["versions"]:
                    version["deployedModels"] = [d for d in version["deployedModels"] if d["deployedModelId"] in live]
            self.store.save()

    def mark_undeployed(self, name: str, deployed_model_id: str) -> None:
        with self.store.lock:
            try:
                version = self.resolve(name)
            except NotFound:
                return
            version["deployedModels"] = [
                d for d in version["deployedModels"] if d["deployedModelId"] != deployed_model_id
            ]
            self.store.save()
