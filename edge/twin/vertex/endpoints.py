"""Endpoints: deploy and undeploy models with a traffic split, route predict calls, and log them (Vertex's
request-response logging to BigQuery, edge/twin/vertex/request_log.py) when the endpoint says so."""

from __future__ import annotations

import copy
import logging
import random
import re
import threading

from edge.twin.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TwinError,
    Unavailable,
)
from edge.twin.vertex import filters
from edge.twin.vertex.deployments import ModelServers
from edge.twin.vertex.models import ModelRegistry
from edge.twin.vertex.request_log import RequestLog, logging_config
from edge.twin.vertex.store import Operations, Store, now

log = logging.getLogger(__name__)

LOGGING = "predictRequestResponseLoggingConfig"
_MUTABLE = ("displayName", "description", "labels", "trafficSplit", LOGGING)


def _check_split(split: dict, allowed: set[str]) -> dict[str, int]:
    if not isinstance(split, dict):
        raise InvalidArgument("traffic_split must be a map of deployed model id to percentage.")
    unknown = sorted(set(split) - allowed)
    if unknown:
        raise InvalidArgument(f"traffic_split names deployed models that are not on the endpoint: {unknown}.")
    values = {}
    for key, value in split.items():
        if not isinstance(value, int) or not 0 <= value <= 100:
            raise InvalidArgument(f"traffic_split[{key!r}] must be an integer from 0 to 100, got {value!r}.")
        values[key] = value
    if values and sum(values.values()) != 100:
        raise InvalidArgument(f"traffic_split must add up to 100, got {sum(values.values())}.")
    return values


class Endpoints:
    def __init__(self, store: Store, operations: Operations, models: ModelRegistry, servers: ModelServers):
        self.store = store
        self.operations = operations
        self.models = models
        self.servers = servers
        self.request_log: RequestLog | None = None  # where sampled predict calls go (the twin's BigQuery)

    def log_requests_to(self, request_log: RequestLog) -> None:
        """Predict calls of endpoints whose logging config is enabled go to `request_log` from now on."""
        self.request_log = request_log

    def _logging(self, config: object, name: str, display_name: str) -> dict:
        """A logging config checked and resolved; its table made when logging is on (as Vertex does)."""
        kept = logging_config(config, name, display_name)
        if self.request_log is not None:
            self.request_log.prepare(kept)
        return kept

    def get(self, name: str) -> dict:
        return self.store.get("endpoints", name, "Endpoint")

    def list(self, parent: str, filter_text: str | None = None) -> list[dict]:
        terms = filters.parse(filter_text)
        return [e for e in self.store.list("endpoints", parent) if filters.matches(e, terms)]

    def create(self, parent: str, body: dict, endpoint_id: str | None) -> dict:
        if not body.get("displayName"):
            raise InvalidArgument("endpoint.display_name is required.")
        with self.store.lock:
            name = f"{parent}/endpoints/{endpoint_id or self.store.new_id()}"
            if name in self.store.collection("endpoints"):
                raise AlreadyExists(f"Endpoint {name} already exists.")
            stamp = now()
            endpoint = {
                **{k: v for k, v in body.items() if k in _MUTABLE},
                "name": name,
                "displayName": body["displayName"],
                "labels": body.get("labels", {}),
                "deployedModels": [],
                "trafficSplit": {},
                "createTime": stamp,
                "updateTime": stamp,
                "etag": stamp,
            }
            if LOGGING in body:
                endpoint[LOGGING] = self._logging(body[LOGGING], name, endpoint["displayName"])
            self.store.collection("endpoints")[name] = endpoint
            self.store.save()
        return self.operations.completed(name, "CreateEndpointOperationMetadata", "Endpoint", endpoint)

    def patch(self, name: str, body: dict, update_mask: str | None) -> dict:
        fields = [filters._camel(f.strip()) for f in (update_mask or ",".join(body)).split(",") if f.strip()]
        with self.store.lock:
            endpoint = self.get(name)
            for field in fields:
                if field not in _MUTABLE:
                    raise InvalidArgument(f"Field {field!r} cannot be updated; updatable: {', '.join(_MUTABLE)}.")
                if field == "trafficSplit":
                    ids = {d["id"] for d in endpoint["deployedModels"]}
                    split = _check_split(body.get("trafficSplit", {}), ids)
                    if ids and set(split) != ids:
                        split = {i: split.get(i, 0) for i in ids}
                    endpoint["trafficSplit"] = split
                elif field == LOGGING:
                    endpoint[LOGGING] = self._logging(body.get(LOGGING, {}), name, endpoint["displayName"])
                elif field in body:
                    endpoint[field] = copy.deepcopy(body[field])
            endpoint["updateTime"] = endpoint["etag"] = now()
            self.store.save()
            return endpoint

    def delete(self, name: str) -> dict:
        with self.store.lock:
            endpoint = self.get(name)
            if endpoint["deployedModels"]:
                ids = ", ".join(d["id"] for d in endpoint["deployedModels"])
                raise FailedPrecondition(
                    f"Endpoint {name} has deployed models ({ids}); undeploy them before deleting it."
                )
            del self.store.collection("endpoints")[name]
            self.store.save()
        return self.operations.completed(name, "DeleteOperationMetadata", "Empty")

    def deploy(self, name: str, body: dict) -> dict:
        """Starts the model's server in the background; the operation is done once it serves."""
        spec = body.get("deployedModel")
        if not isinstance(spec, dict) or not spec.get("model"):
            raise InvalidArgument("deployed_model.model is required.")
        with self.store.lock:
            endpoint = self.get(name)
            version = self.models.resolve(spec["model"])
            if not version.get("artifactUri"):
                raise FailedPrecondition(f"Model {spec['model']} has no artifact_uri to serve.")
            ids = {d["id"] for d in endpoint["deployedModels"]}
            split = _check_split(body.get("trafficSplit") or {}, ids | {"0"})
            deployed_model_id = spec.get("id") or self.store.new_id()
            if not re.fullmatch(r"[0-9]{1,19}", deployed_model_id):
                raise InvalidArgument(f"deployed_model.id must be digits, got {deployed_model_id!r}.")
            if deployed_model_id in self.deployed_ids() or deployed_model_id in self.servers.running():
                raise AlreadyExists(f"Deployed model id {deployed_model_id} is already in use.")
            deployed = {
                **{k: v for k, v in spec.items() if k not in ("id", "model")},
                "id": deployed_model_id,
                "model": version["name"],
                "modelVersionId": version["versionId"],
                "displayName": spec.get("displayName") or version["displayName"],
                "createTime": now(),
            }
            self.models.mark_deployed(f"{version['name']}@{version['versionId']}", name, deployed_model_id)
        op = self.operations.start(name, "DeployModelOperationMetadata")
        threading.Thread(
            target=self._finish_deploy,
            args=(op, name, deployed, version["artifactUri"], split, _serving_image(version)),
            name=f"deploy-{deployed_model_id}",
            daemon=True,
        ).start()
        return op

    def _finish_deploy(
        self, op: dict, name: str, deployed: dict, artifact_uri: str, split: dict, image: str = ""
    ) -> None:
        versioned = f"{deployed['model']}@{deployed['modelVersionId']}"
        try:
            self.servers.start(deployed["id"], artifact_uri, image)
        except Exception as exc:
            error = exc if isinstance(exc, TwinError) else FailedPrecondition(f"Deploy failed: {exc}")
            log.warning("deploy of %s failed: %s", versioned, error.message)
            self.models.mark_undeployed(versioned, deployed["id"])
            self.operations.finish(op, error=error)
            return
        with self.store.lock:
            try:
                endpoint = self.get(name)
            except NotFound as exc:  # the endpoint was deleted meanwhile
                self.models.mark_undeployed(versioned, deployed["id"])
                self.operations.finish(op, error=exc)
                threading.Thread(target=self.servers.stop, args=(deployed["id"],), daemon=True).start()
                return
            endpoint["deployedModels"].append(deployed)
            live = {d["id"] for d in endpoint["deployedModels"]}
            split = {(deployed["id"] if k == "0" else k): v for k, v in split.items()}
            split = {k: v for k, v in split.items() if k in live}  # models undeployed while this one loaded
            if split and sum(split.values()) != 100:
                split[deployed["id"]] = split.get(deployed["id"], 0) + 100 - sum(split.values())
            if split:
                endpoint["trafficSplit"] = {**{i: 0 for i in live}, **split}
            elif not endpoint["trafficSplit"]:
                endpoint["trafficSplit"] = {deployed["id"]: 100}
            else:
                endpoint["trafficSplit"][deployed["id"]] = 0
            endpoint["updateTime"] = endpoint["etag"] = now()
            self.store.save()
        self.operations.finish(op, "DeployModelResponse", {"deployedModel": deployed})

    def undeploy(self, name: str, body: dict) -> dict:
        deployed_model_id = body.get("deployedModelId")
        with self.store.lock:
            endpoint = self.get(name)
            deployed = next((d for d in endpoint["deployedModels"] if d["id"] == deployed_model_id), None)
            if deployed is None:
                raise NotFound(f"Deployed model {deployed_model_id!r} not found on endpoint {name}.")
            remaining = {d["id"] for d in endpoint["deployedModels"]} - {deployed_model_id}
            if body.get("trafficSplit"):
                split = _check_split(body["trafficSplit"], remaining)
            elif endpoint["trafficSplit"].get(deployed_model_id, 0) > 0 and remaining:
                raise FailedPrecondition(
                    f"Deployed model {deployed_model_id} still receives traffic; "
                    "give a traffic_split for the models that remain."
                )
            else:
                split = {k: v for k, v in endpoint["trafficSplit"].items() if k in remaining}
            endpoint["deployedModels"].remove(deployed)
            endpoint["trafficSplit"] = split
            endpoint["updateTime"] = endpoint["etag"] = now()
            self.store.save()
            self.models.mark_undeployed(f"{deployed['model']}@{deployed['modelVersionId']}", deployed_model_id)
        # Traffic has moved away: the server drains its in-flight requests, then stops.
        threading.Thread(target=self.servers.stop, args=(deployed_model_id,), daemon=True).start()
        return self.operations.completed(name, "UndeployModelOperationMetadata", "UndeployModelResponse", {})

    async def predict(self, name: str, body: bytes) -> dict:
        """The deployed model's answer, picked by the traffic split (body limits: the route's)."""
        with self.store.lock:
            endpoint = self.get(name)
            split = {k: v for k, v in endpoint["trafficSplit"].items() if v > 0}
            if not split:
                raise FailedPrecondition(f"Endpoint {name} has no deployed model receiving traffic.")
            chosen = random.choices(list(split), weights=list(split.values()))[0]
            deployed = next((d for d in endpoint["deployedModels"] if d["id"] == chosen), None)
            if deployed is None:
                raise Unavailable(f"Endpoint {name} routes traffic to {chosen}, which is not deployed; retry.")
            logged = endpoint.get(LOGGING)
        payload = await self.servers.predict(chosen, body)
        if logged and logged["enabled"] and self.request_log and random.random() < logged["samplingRate"]:
            self.request_log.submit(name, logged, chosen, body, payload["predictions"])
        return {
            "predictions": payload["predictions"],
            "deployedModelId": chosen,
            "model": deployed["model"],
            "modelDisplayName": deployed["displayName"],
            "modelVersionId": deployed["modelVersionId"],
        }

    def deployed_ids(self) -> set[str]:
        with self.store.lock:
            return {d["id"] for e in self.store.collection("endpoints").values() for d in e["deployedModels"]}

    def serve_deployed(self) -> list[threading.Thread]:
        """Starts the servers of every deployed model again (after a twin restart), in the background."""
        threads = []
        with self.store.lock:
            versions = [
                (d["id"], self.models.resolve(f"{d['model']}@{d['modelVersionId']}"))
                for e in self.store.collection("endpoints").values()
                for d in e["deployedModels"]
            ]
            pending = [(dm_id, v["artifactUri"], _serving_image(v)) for dm_id, v in versions]
        for deployed_model_id, artifact_uri, image in pending:
            thread = threading.Thread(
                target=self._serve_again, args=(deployed_model_id, artifact_uri, image), daemon=True
            )
            thread.start()
            threads.append(thread)
        return threads

    def _serve_again(self, deployed_model_id: str, artifact_uri: str, image: str = "") -> None:
        try:
            self.servers.start(deployed_model_id, artifact_uri, image)
        except Exception as exc:
            log.error("could not serve deployed model %s again: %s", deployed_model_id, exc)


def _serving_image(version: dict) -> str:
    """The model version's serving image (its containerSpec): it says which prebuilt container serves it."""
    return (version.get("containerSpec") or {}).get("imageUri", "")
