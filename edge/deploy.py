"""Deploys registry versions to the model's endpoint without downtime, rolls back, and predicts."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from edge.config import ModelConfig
from edge.errors import EdgeError
from edge.project import Project

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
PAYLOAD = Path("test_payload.json")
SMOKE_SHARE = 10  # percent of traffic the new version takes while it is smoke-tested


class DeployError(EdgeError):
    """Deploy or predict could not go on; the message is one line that says what to do."""


def _entry(state: dict, model: ModelConfig) -> dict:
    return state.get("models", {}).get(model.name, {})


def registry_versions(project: Project, model: ModelConfig) -> list[str]:
    entry = _entry(project.state.read()[0], model)
    if not entry.get("registry"):
        raise DeployError(f"{model.name} has no registered version yet: run `invoke train`")
    vertex = project.vertex()
    return sorted((m.version_id for m in vertex.models.ModelRegistry(entry["registry"]).list_versions()), key=int)


def resolve_version(project: Project, model: ModelConfig, version: str | None):
    """The registry Model of `version` (a number or an alias; default: the default version)."""
    from google.api_core.exceptions import NotFound

    entry = _entry(project.state.read()[0], model)
    if not entry.get("registry"):
        raise DeployError(f"{model.name} has no registered version yet: run `invoke train`")
    vertex = project.vertex()
    try:
        return vertex.Model(f"{entry['registry']}@{version or 'default'}")
    except NotFound:
        known = ", ".join(registry_versions(project, model))
        raise DeployError(f"{model.name} has no version {version!r} in the registry (versions: {known})") from None


def endpoint_for(project: Project, model: ModelConfig, create: bool = True):
    """The model's endpoint: from the state, else by display name (Terraform's on gcp), else a new one."""
    vertex = project.vertex()
    name = _entry(project.state.read()[0], model).get("endpoint")
    if name:
        return vertex.Endpoint(name)
    found = vertex.Endpoint.list(filter=f'display_name="{model.endpoint}"')
    if found:
        endpoint = found[0]
    elif create:
        endpoint = vertex.Endpoint.create(display_name=model.endpoint, labels={"edge_model": model.name})
    else:
        return None

    def remember(state: dict) -> None:
        state.setdefault("models", {}).setdefault(model.name, {})["endpoint"] = endpoint.resource_name

    project.state.update(remember)
    return endpoint


def load_payload(path: Path) -> list:
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"payload file {path} not found") from None
    except ValueError as exc:
        raise DeployError(f"payload file {path} is not valid JSON: {exc}") from None
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise DeployError(f'{path} must be {{"instances": [[784 pixel values], ...]}}')
    return instances


def _smoke_test(endpoint, deployed_model_id: str, instances: list, share: int) -> list:
    """Predicts until the new deployed model (with `share`% of traffic) has answered; returns its predictions.

    Tries often enough that a healthy model at that share is missed with odds under one in a million."""
    attempts = 1 if share >= 100 else math.ceil(math.log(1e-6) / math.log(1 - share / 100))
    for _ in range(attempts):
        response = endpoint.predict(instances=instances)
        if response.deployed_model_id == deployed_model_id:
            predictions = list(response.predictions)
            if len(predictions) != len(instances) or any(int(p["class_id"]) not in range(10) for p in predictions):
                raise DeployError(f"smoke test: unexpected predictions {predictions!r}")
            return predictions
    raise DeployError(f"smoke test: deployed model {deployed_model_id} never answered in {attempts} predictions")


def _traffic_split(new_id: str, traffic: int, others: list, previous: dict) -> dict[str, int]:
    """`traffic`% to `new_id`; the rest shared by the other deployed models in their previous proportions."""
    split = {new_id: traffic, **{d.id: 0 for d in others}}
    remaining = 100 - traffic
    if remaining and others:
        weights = {d.id: previous.get(d.id, 0) for d in others}
        if not any(weights.values()):
            weights = {others[0].id: 1}
        total = sum(weights.values())
        shares = {i: w * remaining // total for i, w in weights.items()}
        shares[max(weights, key=weights.get)] += remaining - sum(shares.values())
        split.update(shares)
    return split


def deploy_version(
    project: Project,
    model: ModelConfig,
    version: str | None = None,
    traffic: int = 100,
    payload: Path = PAYLOAD,
    record_history: bool = True,
) -> dict:
    """Deploys `version` beside what serves, smoke-tests it with a small share of traffic, then moves
    `traffic`% to it and (at 100%) undeploys the rest. A version already on the endpoint gets the traffic
    without a second deployment.

    If anything fails, traffic goes back and a new deployment is removed: the old one never stopped.
    """
    if not 1 <= traffic <= 100:
        raise DeployError(f"--traffic must be between 1 and 100, got {traffic}")
    registry_model = resolve_version(project, model, version)
    instances = load_payload(project.root / payload)
    endpoint = endpoint_for(project, model)
    deployed = endpoint.list_models()
    previous = dict(endpoint.traffic_split)
    current = next((d for d in deployed if d.model_version_id == registry_model.version_id), None)
    others = [d for d in deployed if d is not current]
    if not others:
        if current is not None:
            return {"version": registry_model.version_id, "endpoint": endpoint.resource_name, "changed": False}
        traffic = 100  # nothing else serves: a canary share has nothing to share with
    serving_before = max(others, key=lambda d: previous.get(d.id, 0)).model_version_id if others else None

    before = {d.id for d in deployed}
    smoke_share = min(traffic, max(SMOKE_SHARE, previous.get(current.id, 0) if current else 0))
    try:
        if current is None:
            endpoint.deploy(
                registry_model,
                deployed_model_display_name=f"{model.name}-v{registry_model.version_id}",
                machine_type=model.serving.machine_type,
                min_replica_count=model.serving.min_replicas,
                max_replica_count=model.serving.max_replicas,
                traffic_percentage=0 if deployed else 100,
            )
            new_id = next(d.id for d in endpoint.list_models() if d.id not in before)
        else:
            new_id = current.id
        if others:  # the smoke test sees a small share first; users' traffic moves once it passed
            endpoint.update(traffic_split=_traffic_split(new_id, smoke_share, others, previous))
        predictions = _smoke_test(endpoint, new_id, instances, smoke_share if others else 100)
        if others and traffic != smoke_share:
            endpoint.update(traffic_split=_traffic_split(new_id, traffic, others, previous))
    except BaseException:
        if others:
            endpoint.update(traffic_split={**{i: 0 for i in (d.id for d in endpoint.list_models())}, **previous})
        for extra in [d.id for d in endpoint.list_models() if d.id not in before]:
            endpoint.undeploy(extra)
        raise
    if traffic == 100:
        for old in others:
            endpoint.undeploy(old.id)

    now_deployed = {d.id: d.model_version_id for d in endpoint.list_models()}
    final_split = dict(endpoint.traffic_split)

    def remember(state: dict) -> None:
        entry = state.setdefault("models", {}).setdefault(model.name, {})
        if record_history and serving_before:
            entry.setdefault("history", []).append(serving_before)
        entry["deployed"] = [
            {"version": v, "deployed_model_id": i, "traffic": final_split.get(i, 0)} for i, v in now_deployed.items()
        ]

    project.state.update(remember)
    return {
        "version": registry_model.version_id,
        "endpoint": endpoint.resource_name,
        "changed": True,
        "traffic": final_split,
        "smoke": [int(p["class_id"]) for p in predictions],
    }


def rollback(project: Project, model: ModelConfig, payload: Path = PAYLOAD) -> dict:
    """Deploys the version that served before the last deploy, the same zero-downtime way."""
    state, _ = project.state.read()
    history = _entry(state, model).get("history", [])
    if not history:
        raise DeployError(f"{model.name} has no earlier deployed version to roll back to")
    result = deploy_version(project, model, history[-1], payload=payload, record_history=False)

    def pop(state: dict) -> None:
        state["models"][model.name]["history"].pop()

    project.state.update(pop)
    return result


def describe_endpoint(project: Project, model: ModelConfig) -> dict:
    endpoint = endpoint_for(project, model, create=False)
    if endpoint is None:
        raise DeployError(f"{model.name} has no endpoint yet: run `invoke deploy`")
    base = project.target.vertex_endpoint or f"https://{project.config.region}-aiplatform.googleapis.com"
    split = endpoint.traffic_split
    return {
        "name": endpoint.resource_name,
        "url": f"{base}/v1/{endpoint.resource_name}:predict",
        "deployed": [
            {"id": d.id, "version": d.model_version_id, "traffic": split.get(d.id, 0)} for d in endpoint.list_models()
        ],
    }


def serving_endpoint(project: Project, model: ModelConfig):
    """Where predictions go: EDGE_ENDPOINTS (JSON model -> endpoint, set by Terraform on Cloud Run, whose
    account may predict but not read the bucket), else the endpoint in the state; None if there is none."""
    names = json.loads(os.environ.get("EDGE_ENDPOINTS") or "{}")
    if model.name in names:
        return project.vertex().Endpoint(names[model.name])
    return endpoint_for(project, model, create=False)


def predict(project: Project, model: ModelConfig, payload: Path = PAYLOAD) -> dict:
    """Predictions for a payload file's instances (see `predict_instances`)."""
    return predict_instances(project, model, load_payload(payload if payload.is_absolute() else project.root / payload))


def predict_instances(project: Project, model: ModelConfig, instances: list) -> dict:
    """Class ids, names and top probabilities for `instances` (784 pixel values 0..255 each), and which
    version answered: {"predictions": [{"class_id", "class_name", "probability", "probabilities"}], "version", ...}."""
    from google.api_core import exceptions

    not_deployed = DeployError(f"{model.name} is not deployed: run `invoke deploy`")
    endpoint = serving_endpoint(project, model)
    if endpoint is None:
        raise not_deployed
    try:
        response = endpoint.predict(instances=instances)
    except exceptions.BadRequest as exc:
        if not endpoint.list_models():
            raise not_deployed from None
        raise DeployError(f"the endpoint refused the payload: {exc.message}") from None
    except exceptions.GoogleAPICallError as exc:
        raise DeployError(f"the endpoint failed: {exc.message}") from None
    rows = []
    for p in response.predictions:
        class_id = int(p["class_id"])
        probabilities = [float(v) for v in p["probabilities"]] if "probabilities" in p else None
        rows.append(
            {
                "class_id": class_id,
                "class_name": CLASS_NAMES[class_id],
                "probability": probabilities[class_id] if probabilities else None,
                "probabilities": probabilities,
            }
        )
    return {"predictions": rows, "version": response.model_version_id, "deployed_model_id": response.deployed_model_id}
