"""Deploys registry versions to the model's endpoint without downtime, rolls back, and predicts."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from edge.config import ModelConfig
from edge.errors import EdgeError
from edge.models import ModelSpec, ModelSpecError, load_payload
from edge.project import Project
from edge.state import State

SMOKE_SHARE = 10  # percent of traffic the new version takes while it is smoke-tested


class DeployError(EdgeError):
    """Deploy or predict could not go on; the message is one line that says what to do."""


def registry_name(project: Project, model: ModelConfig) -> str:
    """The model's registry entry; DeployError until the first training registered one."""
    name = project.state.read().model(model.name).registry
    if not name:
        raise DeployError(f"{model.name} has no registered version yet: run `invoke train`")
    return name


def registry_versions(project: Project, model: ModelConfig) -> list[str]:
    vertex = project.vertex()
    versions = vertex.models.ModelRegistry(registry_name(project, model)).list_versions()
    return sorted((m.version_id for m in versions), key=int)


def resolve_version(project: Project, model: ModelConfig, version: str | None):
    """The registry Model of `version` (a number or an alias; default: the default version)."""
    from google.api_core.exceptions import NotFound

    name = registry_name(project, model)
    vertex = project.vertex()
    try:
        return vertex.Model(f"{name}@{version or 'default'}")
    except NotFound:
        known = ", ".join(registry_versions(project, model))
        raise DeployError(f"{model.name} has no version {version!r} in the registry (versions: {known})") from None


def endpoint_for(project: Project, model: ModelConfig, create: bool = True):
    """The model's endpoint: from the state, else by display name (Terraform's on gcp), else (with `create`) a new
    one. With `create` (deploys), the endpoint also gets the request-response logging of edge.yaml's `monitoring:`."""
    found = _find_endpoint(project, model)
    return _ready_endpoint(project, model, found) if create else found


def _find_endpoint(project: Project, model: ModelConfig):
    """The model's endpoint from the state, else by display name (then kept in the state), else None."""
    vertex = project.vertex()
    name = project.state.read().model(model.name).endpoint
    if name:
        return vertex.Endpoint(name)
    found = vertex.Endpoint.list(filter=f'display_name="{model.endpoint}"')
    if found:
        _remember_endpoint(project, model, found[0])
        return found[0]
    return None


def _ready_endpoint(project: Project, model: ModelConfig, found):
    """`found` (or a new endpoint when None) with edge.yaml's request-response logging."""
    from edge.monitoring import request_logging

    if found is not None:
        request_logging.ensure(found, project.config.project, model)
        return found
    endpoint = project.vertex().Endpoint.create(
        display_name=model.endpoint,
        labels={"edge_model": model.name},
        **request_logging.create_options(project.config.project, model),
    )
    _remember_endpoint(project, model, endpoint)
    return endpoint


def _remember_endpoint(project: Project, model: ModelConfig, endpoint) -> None:
    def remember(state: State) -> None:
        state.model(model.name).endpoint = endpoint.resource_name

    project.state.update(remember)


def _smoke_test(endpoint, spec: ModelSpec, deployed_model_id: str, instances: list, share: int) -> list[dict]:
    """Predicts until the new deployed model (with `share`% of traffic) has answered; returns its predictions,
    read as the model's kind says (a class of model.yaml's labels for a classifier).

    Tries often enough that a healthy model at that share is missed with odds under one in a million."""
    attempts = 1 if share >= 100 else math.ceil(math.log(1e-6) / math.log(1 - share / 100))
    for _ in range(attempts):
        response = endpoint.predict(instances=instances)
        if response.deployed_model_id == deployed_model_id:
            try:
                predictions = [spec.read_prediction(p) for p in response.predictions]
            except ModelSpecError as exc:
                raise DeployError(f"smoke test: {exc}") from None
            if (
                len(predictions) != len(instances)
                or spec.labels
                and any(p["class_id"] not in range(len(spec.labels)) for p in predictions)
            ):
                raise DeployError(f"smoke test: unexpected predictions {list(response.predictions)!r}")
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


@dataclass
class _Plan:
    """What a deploy starts from: the candidate, what else is on the endpoint, and the traffic before."""

    registry_model: object
    current: object | None  # the candidate's deployment, if it is on the endpoint already
    others: list  # the other deployments
    previous: dict[str, int]  # the traffic split before the deploy
    traffic: int
    serving_before: str | None  # the version that had most traffic (what a rollback returns to)

    @property
    def smoke_share(self) -> int:
        held = self.previous.get(self.current.id, 0) if self.current else 0
        return min(self.traffic, max(SMOKE_SHARE, held)) if self.others else 100


def _plan(endpoint, registry_model, traffic: int) -> _Plan:
    deployed = endpoint.list_models()
    previous = dict(endpoint.traffic_split)
    current = next((d for d in deployed if d.model_version_id == registry_model.version_id), None)
    others = [d for d in deployed if d is not current]
    serving_before = max(others, key=lambda d: previous.get(d.id, 0)).model_version_id if others else None
    # nothing else serves: a canary share has nothing to share with
    return _Plan(registry_model, current, others, previous, traffic if others else 100, serving_before)


def _roll_out(endpoint, model: ModelConfig, spec: ModelSpec, plan: _Plan, instances: list) -> tuple[str, list]:
    """Deploys the candidate beside the others (or reuses its deployment), smoke-tests it at a small share,
    then gives it its traffic; returns (deployed model id, smoke-test predictions). On any failure (Ctrl-C
    included) traffic goes back and a new deployment is removed: the old ones never stopped."""
    before = {d.id for d in [*plan.others, *([plan.current] if plan.current else [])]}
    try:
        if plan.current is None:
            endpoint.deploy(
                plan.registry_model,
                deployed_model_display_name=f"{model.name}-v{plan.registry_model.version_id}",
                machine_type=model.serving.machine_type,
                min_replica_count=model.serving.min_replicas,
                max_replica_count=model.serving.max_replicas,
                traffic_percentage=0 if before else 100,
            )
            new_id = next(d.id for d in endpoint.list_models() if d.id not in before)
        else:
            new_id = plan.current.id
        if plan.others:  # the smoke test sees a small share first; users' traffic moves once it passed
            endpoint.update(traffic_split=_traffic_split(new_id, plan.smoke_share, plan.others, plan.previous))
        predictions = _smoke_test(endpoint, spec, new_id, instances, plan.smoke_share)
        if plan.others and plan.traffic != plan.smoke_share:
            endpoint.update(traffic_split=_traffic_split(new_id, plan.traffic, plan.others, plan.previous))
    except BaseException:
        if plan.others:
            live = [d.id for d in endpoint.list_models()]
            endpoint.update(traffic_split={**{i: 0 for i in live}, **plan.previous})
        for extra in [d.id for d in endpoint.list_models() if d.id not in before]:
            endpoint.undeploy(extra)
        raise
    return new_id, predictions


def deploy_version(
    project: Project,
    model: ModelConfig,
    version: str | None = None,
    traffic: int = 100,
    payload: Path | None = None,
    record_history: bool = True,
    gated: bool = True,
    force_reason: str | None = None,
) -> dict:
    """Deploys `version` beside what serves, smoke-tests it with a small share of traffic, then moves
    `traffic`% to it and (at 100%) undeploys the rest. A version already on the endpoint gets the traffic
    without a second deployment. If anything fails, the endpoint is left as it was.

    When `gated`, the deploy gate (edge.evaluation.gate) judges the version first and refuses it (GateRefused,
    nothing changed) unless `force_reason` says why it deploys anyway; a forced deploy is recorded in the deploy
    history and as labels on the version.
    """
    if not 1 <= traffic <= 100:
        raise DeployError(f"--traffic must be between 1 and 100, got {traffic}")
    if force_reason is not None and not force_reason.strip():
        raise DeployError('--force needs --reason "why" (kept in the deploy history and on the version labels)')
    registry_model = resolve_version(project, model, version)
    spec = project.spec(model)
    instances = load_payload(spec, payload)
    existing = _find_endpoint(project, model)
    gate = _pass_gate(project, model, existing, registry_model, force_reason) if gated else None
    endpoint = _ready_endpoint(project, model, existing)
    plan = _plan(endpoint, registry_model, traffic)
    if plan.current is not None and not plan.others:
        return {"version": registry_model.version_id, "endpoint": endpoint.resource_name, "changed": False}
    new_id, predictions = _roll_out(endpoint, model, spec, plan, instances)
    if plan.traffic == 100:
        for old in plan.others:
            endpoint.undeploy(old.id)
    final_split = _remember(project, model, endpoint, plan, new_id, record_history, force_reason)
    if force_reason is not None:
        _label_forced(project, registry_model, force_reason)
    return {
        "version": registry_model.version_id,
        "endpoint": endpoint.resource_name,
        "changed": True,
        "traffic": final_split,
        "smoke": [p["class_id"] for p in predictions],
        "gate": gate,
        "forced": force_reason is not None,
    }


def _pass_gate(project: Project, model: ModelConfig, existing, registry_model, force_reason: str | None) -> str | None:
    """The gate's verdict on the candidate against the version with the most traffic, read from the `existing`
    endpoint (None: there is none yet) as it is (nothing changes before the verdict); GateRefused unless it passed or
    is forced. None when the candidate already serves alone (nothing would change)."""
    from edge.evaluation.gate import OVERRIDE, GateRefused, check

    deployed = existing.list_models() if existing is not None else []
    split = dict(existing.traffic_split) if existing is not None else {}
    if deployed and all(d.model_version_id == registry_model.version_id for d in deployed):
        return None
    serving = max(deployed, key=lambda d: split.get(d.id, 0)).model_version_id if deployed else None
    verdict = check(project, model, registry_model.resource_name, registry_model.version_id, serving)
    if verdict.passed:
        return verdict.line
    if force_reason is None:
        raise GateRefused(f"deploy refused: {verdict.line}; {OVERRIDE}")
    return f"forced past the gate: {verdict.line}"


FORCED_LABELS = ("edge_forced", "edge_forced_reason", "edge_forced_by", "edge_forced_at")


def label_value(text: str) -> str:
    """`text` as a label value: lower-case letters, digits, `_` and `-`, at most 63 characters."""
    import re

    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:63].rstrip("-")


def _label_forced(project: Project, registry_model, reason: str) -> None:
    """Marks the version as deployed past the gate: edge_forced=true, the reason, who and when (UTC), as labels
    (labels hold `[a-z0-9_-]{0,63}`: the reason is shortened; the deploy history keeps it whole)."""
    from edge.state import whoami

    labels = {k: v for k, v in (registry_model.labels or {}).items() if k not in FORCED_LABELS}
    labels.update(
        edge_forced="true",
        edge_forced_reason=label_value(reason),
        edge_forced_by=label_value(whoami()),
        edge_forced_at=time.strftime("%Y%m%dt%H%M%Sz", time.gmtime()),
    )
    client = project.target.model_service_client()
    client.update_model(
        model={"name": f"{registry_model.resource_name}@{registry_model.version_id}", "labels": labels},
        update_mask={"paths": ["labels"]},
    )


def _remember(
    project: Project,
    model: ModelConfig,
    endpoint,
    plan: _Plan,
    new_id: str,
    record_history: bool,
    force_reason: str | None = None,
) -> dict:
    """Records what is deployed now, the rollback history and the deploy itself; returns the traffic split."""
    from edge.state import Deployment, DeployRecord, whoami

    now_deployed = {d.id: d.model_version_id for d in endpoint.list_models()}
    split = dict(endpoint.traffic_split)
    version = plan.registry_model.version_id

    def remember(state: State) -> None:
        entry = state.model(model.name)
        if record_history and plan.serving_before:
            entry.history.append(plan.serving_before)
        entry.deployed = [
            Deployment(version=v, deployed_model_id=i, traffic=split.get(i, 0)) for i, v in now_deployed.items()
        ]
        entry.deploys.append(
            DeployRecord(
                version=version,
                traffic=split.get(new_id, 0),
                who=whoami(),
                when=time.time(),
                forced=force_reason is not None,
                reason=force_reason,
            )
        )

    project.state.update(remember)
    return split


def rollback(project: Project, model: ModelConfig, payload: Path | None = None) -> dict:
    """Deploys the version that served before the last deploy, the same zero-downtime way. The gate does not judge
    it: it served users before (past the gate, or forced and recorded), and a rollback must not wait on an
    evaluation when the serving version misbehaves in ways its evaluation did not show."""
    history = project.state.read().model(model.name).history
    if not history:
        raise DeployError(f"{model.name} has no earlier deployed version to roll back to")
    result = deploy_version(project, model, history[-1], payload=payload, record_history=False, gated=False)

    def pop(state: State) -> None:
        state.model(model.name).history.pop()

    project.state.update(pop)
    return result


def describe_endpoint(project: Project, model: ModelConfig) -> dict:
    endpoint = endpoint_for(project, model, create=False)
    if endpoint is None:
        raise DeployError(f"{model.name} has no endpoint yet: run `invoke deploy`")
    split = endpoint.traffic_split
    return {
        "name": endpoint.resource_name,
        "url": project.target.predict_url(endpoint.resource_name),
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


def predict(project: Project, model: ModelConfig, payload: Path | None = None) -> dict:
    """Predictions for a payload file's instances (default: the model's own payload; see `predict_instances`)."""
    spec = project.spec(model)
    if payload is not None and not payload.is_absolute():
        payload = project.root / payload
    return predict_instances(project, model, load_payload(spec, payload))


def predict_instances(project: Project, model: ModelConfig, instances: list) -> dict:
    """Predictions for `instances` as the model's kind reads them ({class_id, class_name, probability,
    probabilities} for a classifier), and which version answered."""
    from google.api_core import exceptions

    spec = project.spec(model)
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
    rows = [spec.read_prediction(p) for p in response.predictions]
    return {"predictions": rows, "version": response.model_version_id, "deployed_model_id": response.deployed_model_id}
