"""edge.yaml, typed: loaded once, validated, passed down. Errors name the file, the field and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import EdgeError

CONFIG_FILE = "edge.yaml"
TARGETS = ("twin", "gcp")
_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
# The same pattern as infra/variables.tf's region validation (tests/infra check both on the same names).
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
# infra: the same rules as infra/variables.tf (name_prefix, circleci_*), and a Cloud Storage object prefix.
_NAME_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,19}[a-z0-9]")
_STATE_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CIRCLECI_IDS = ("circleci_org_id", "circleci_project_id", "circleci_context_id")


class ConfigError(EdgeError):
    """edge.yaml is missing or wrong; the message is one line that says what to fix."""


def valid_model_name(name: object) -> bool:
    """Whether `name` may name a model: lower-case letters, digits and dashes, starting with a letter (edge.yaml's
    rule, and infra/variables.tf's)."""
    return isinstance(name, str) and bool(_NAME.fullmatch(name))


@dataclass(frozen=True)
class Training:
    image: str = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-15.py310:latest"
    machine_type: str = "n1-standard-4"
    package: str = "trainer"  # the trainer package's directory, under the model's path
    module: str = "trainer.task"  # what the job runs: python -m <module>
    replicas: int = 1  # machines the job trains on: pool 0 the chief, pool 1 the other N-1 (`invoke train --replicas`)


@dataclass(frozen=True)
class Serving:
    image: str = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
    machine_type: str = "n1-standard-2"
    min_replicas: int = 1
    max_replicas: int = 1


# What `invoke deploy`'s gate may compare: summary metrics of an evaluation where higher is better.
GATE_METRICS = ("accuracy", "f1_macro", "auprc_micro", "auprc_macro", "auroc_micro", "auroc_macro", "min_class_recall")


@dataclass(frozen=True)
class Gate:
    """`invoke deploy` refuses a version whose evaluation's `metric` is below `minimum`, or more than `max_drop`
    below the serving version's (README, "Testing the model")."""

    metric: str = "accuracy"
    minimum: float = 0.0
    max_drop: float = 0.01


# BigQuery names of the request log (letters, digits, underscores), as BigQuery and infra/variables.tf accept.
_BIGQUERY_NAME = re.compile(r"[A-Za-z0-9_]{1,1024}")
_MONITORING_GLOBAL_ONLY = ("dataset", "retention_days")  # one dataset, one retention, for every model


@dataclass(frozen=True)
class Monitoring:
    """Request-response logging and drift watching (`invoke monitor`, README "Monitoring"): the top-level
    `monitoring:` section, with a model's own `monitoring:` overriding it (except dataset and retention_days).
    The default thresholds were calibrated on the example image model (benchmarks/monitoring.py); a feature may have
    its own."""

    sampling_rate: float = 1.0  # share of predict calls the endpoint logs; 0 turns logging off
    dataset: str = "edge_monitoring"  # BigQuery dataset of the request logs (Terraform's on gcp)
    table: str = ""  # the model's table in it; default <model>_requests (dashes become underscores)
    retention_days: int = 30  # days a logged request is kept (gcp: the table's partition expiration)
    min_rows: int = 200  # a window with fewer logged requests is not compared
    numeric_threshold: float = 0.1  # Jensen-Shannon divergence (base 2) above which a numeric feature drifted
    categorical_threshold: float = 0.1  # L-infinity distance above which a categorical feature drifted
    thresholds: dict = field(default_factory=dict)  # feature -> its own threshold

    def table_for(self, model: str) -> str:
        return self.table or f"{model.replace('-', '_')}_requests"

    def threshold(self, feature: str, kind: str) -> float:
        """The threshold of `feature`, whose kind is "numeric" or "categorical"."""
        default = self.numeric_threshold if kind == "numeric" else self.categorical_threshold
        return float(self.thresholds.get(feature, default))


@dataclass(frozen=True)
class ModelConfig:
    name: str
    path: str
    endpoint: str
    params: str
    training: Training = field(default_factory=Training)
    serving: Serving = field(default_factory=Serving)
    gate: Gate = field(default_factory=Gate)
    monitoring: Monitoring = field(default_factory=Monitoring)


@dataclass(frozen=True)
class Tracker:
    """The Omniboard + MongoDB VM on gcp (Terraform's experiment_tracker module)."""

    enabled: bool = True
    machine_type: str = "e2-small"
    zone: str = ""  # default: <region>-b


@dataclass(frozen=True)
class WebConfig:
    """The web service that calls the endpoints: its code is services/<service>/ (a Python package named like the
    service, dashes as underscores), deployed as the Cloud Run service <service>."""

    service: str = "web"
    image: str = ""  # Cloud Run image; built from services/<service>/Dockerfile
    invokers: tuple[str, ...] = ()  # IAM members allowed to call the service; none means private


@dataclass(frozen=True)
class InfraConfig:
    """Terraform of the gcp target (infra/): where its state lives, how edge names what it creates, and the
    CircleCI project trusted through workload identity federation (all three ids, or none)."""

    state_prefix: str = "terraform/state"  # of Terraform's state objects in the project bucket
    name_prefix: str = "edge"  # <prefix>-trainer, <prefix>-tracker, <prefix>-ci (identity pool)...
    circleci_org_id: str = ""  # UUIDs from CircleCI's settings; empty: no CI federation
    circleci_project_id: str = ""
    circleci_context_id: str = ""  # the restricted context (edge-gcp) the CI jobs run in


@dataclass(frozen=True)
class Config:
    target: str
    project: str
    region: str
    bucket: str
    models: dict[str, ModelConfig]
    tracker: Tracker = field(default_factory=Tracker)
    web: WebConfig = field(default_factory=WebConfig)
    infra: InfraConfig = field(default_factory=InfraConfig)
    monitoring: Monitoring = field(default_factory=Monitoring)  # the top-level section (models may override)
    root: Path = Path(".")

    def model(self, name: str | None = None) -> ModelConfig:
        """The named model, or the only one when `name` is None."""
        if name is None:
            if len(self.models) != 1:
                raise ConfigError(f"{CONFIG_FILE} defines models {sorted(self.models)}: pass --model NAME")
            return next(iter(self.models.values()))
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(f"{CONFIG_FILE}: no model {name!r} under models: (have {sorted(self.models)})") from None


def _section(raw: dict, key: str, cls, where: str):
    value = raw.get(key, {}) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.{key} must be a mapping")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{where}.{key}: unknown field(s) {unknown}; known: {sorted(known)}")
    for name, spec in cls.__dataclass_fields__.items():
        if name in value:
            expected = {"str": str, "int": int, "bool": bool}.get(str(spec.type))
            if (
                expected
                and not isinstance(value[name], expected)
                or (expected is int and isinstance(value[name], bool))
            ):
                raise ConfigError(f"{where}.{key}.{name} must be a {spec.type}, got {value[name]!r}")
    if "invokers" in value:
        invokers = value["invokers"] or []
        if not isinstance(invokers, list) or not all(isinstance(m, str) for m in invokers):
            raise ConfigError(f"{where}.{key}.invokers must be a list of IAM members such as user:ana@example.com")
        value = {**value, "invokers": tuple(invokers)}
    return cls(**value)


MAX_REPLICAS = 64


def _training(spec: dict, where: str) -> Training:
    training = _section(spec, "training", Training, where)
    if not 1 <= training.replicas <= MAX_REPLICAS:
        raise ConfigError(f"{where}.training.replicas must be from 1 to {MAX_REPLICAS}, got {training.replicas}")
    return training


def _gate(spec: dict, where: str) -> Gate:
    """The model's `gate:` section: a known metric, a floor and a largest drop, both between 0 and 1."""
    value = spec.get("gate", {}) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.gate must be a mapping (metric, minimum, max_drop)")
    unknown = sorted(set(value) - set(Gate.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{where}.gate: unknown field(s) {unknown}; known: ['max_drop', 'metric', 'minimum']")
    gate = Gate(**value)
    if gate.metric not in GATE_METRICS:
        raise ConfigError(f"{where}.gate.metric must be one of {', '.join(GATE_METRICS)}, got {gate.metric!r}")
    for key in ("minimum", "max_drop"):
        number = getattr(gate, key)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 1:
            raise ConfigError(f"{where}.gate.{key} must be a number between 0 and 1, got {number!r}")
    return Gate(gate.metric, float(gate.minimum), float(gate.max_drop))


def _fraction(value: object, where: str, low_open: bool = False) -> float:
    """A number in [0, 1] (in (0, 1] with `low_open`); ConfigError otherwise."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (0 < value <= 1 if low_open else 0 <= value <= 1):
        interval = "above 0 and at most 1" if low_open else "between 0 and 1"
        raise ConfigError(f"{where} must be a number {interval}, got {value!r}")
    return float(value)


def _monitoring(raw: dict, where: str, base: Monitoring | None = None) -> Monitoring:
    """The `monitoring:` section under `raw` (top level, or a model's over the top level's `base`), checked."""
    value = raw.get("monitoring", {}) or {}
    where = f"{where}.monitoring"
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping (sampling_rate, dataset, table, thresholds...)")
    known = set(Monitoring.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    if base is not None:
        for key in _MONITORING_GLOBAL_ONLY:
            if key in value:
                raise ConfigError(f"{where}.{key}: set it in the top-level monitoring: section (one for every model)")
    merged = {**vars(base or Monitoring()), **value}
    merged["sampling_rate"] = _fraction(merged["sampling_rate"], f"{where}.sampling_rate")
    for key in ("numeric_threshold", "categorical_threshold"):
        merged[key] = _fraction(merged[key], f"{where}.{key}", low_open=True)
    for key, allow_empty in (("dataset", False), ("table", True)):
        name = merged[key]
        if not isinstance(name, str) or not (_BIGQUERY_NAME.fullmatch(name) or allow_empty and name == ""):
            raise ConfigError(f"{where}.{key} must be a BigQuery name (letters, digits, underscores), got {name!r}")
    for key, low, high in (("retention_days", 1, 3650), ("min_rows", 1, 10_000_000)):
        number = merged[key]
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            raise ConfigError(f"{where}.{key} must be a whole number from {low} to {high}, got {number!r}")
    thresholds = value.get("thresholds", {}) or {}
    if not isinstance(thresholds, dict):
        raise ConfigError(f"{where}.thresholds must map feature names to thresholds, e.g. {{confidence: 0.2}}")
    checked = {str(k): _fraction(v, f"{where}.thresholds.{k}", low_open=True) for k, v in thresholds.items()}
    merged["thresholds"] = {**(base.thresholds if base else {}), **checked}
    return Monitoring(**merged)


def _infra(raw: dict, where: str) -> InfraConfig:
    infra = _section(raw, "infra", InfraConfig, where)
    checks = (
        ("state_prefix", _STATE_PREFIX, "an object prefix such as terraform/state (no leading or trailing /)"),
        ("name_prefix", _NAME_PREFIX, "2-21 lower-case letters, digits and dashes, starting with a letter"),
    )
    for key, pattern, what in checks:
        if not pattern.fullmatch(getattr(infra, key)):
            raise ConfigError(f"{where}.infra.{key} must be {what}, got {getattr(infra, key)!r}")
    if infra.name_prefix == "gcp" or infra.name_prefix.startswith("gcp-"):
        raise ConfigError(f"{where}.infra.name_prefix may not be gcp (Google reserves gcp- for identity pools)")
    for key in CIRCLECI_IDS:
        value = getattr(infra, key)
        if value and not _UUID.fullmatch(value):
            raise ConfigError(f"{where}.infra.{key} must be a UUID from CircleCI's settings, got {value!r}")
    if len({bool(getattr(infra, key)) for key in CIRCLECI_IDS}) > 1:
        raise ConfigError(f"{where}.infra: set all of {', '.join(CIRCLECI_IDS)}, or none of them")
    return infra


def parse(raw: object, root: Path = Path(".")) -> Config:
    """Validates the parsed YAML of edge.yaml; raises ConfigError with one line on the first problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{CONFIG_FILE} must be a YAML mapping (target, project, region, bucket, models)")
    where = CONFIG_FILE
    for key in ("target", "project", "region", "bucket", "models"):
        if key not in raw:
            raise ConfigError(f"{where}: missing field {key!r}; run `invoke init` to write a complete file")
    unknown = sorted(
        set(raw) - {"target", "project", "region", "bucket", "models", "tracker", "web", "infra", "monitoring"}
    )
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}")
    if raw["target"] not in TARGETS:
        raise ConfigError(f"{where}: target must be one of {TARGETS}, got {raw['target']!r}")
    checks = (
        ("project", _PROJECT, "a Google Cloud project id (6-30 lower-case letters, digits, dashes)"),
        ("region", _REGION, "a region such as us-central1"),
        ("bucket", _BUCKET, "a bucket name (3-63 lower-case letters, digits, dots, dashes, underscores)"),
    )
    for key, pattern, what in checks:
        if not isinstance(raw[key], str) or not pattern.fullmatch(raw[key]):
            raise ConfigError(f"{where}: {key} must be {what}, got {raw[key]!r}")
    if not isinstance(raw["models"], dict) or not raw["models"]:
        raise ConfigError(f"{where}: models must map each model name to its settings")
    monitoring = _monitoring(raw, where)
    models = {}
    for name, spec in raw["models"].items():
        if not valid_model_name(name):
            raise ConfigError(f"{where}: model name {name!r} must be lower-case letters, digits and dashes")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}.models.{name} must be a mapping")
        unknown = sorted(set(spec) - {"path", "endpoint", "params", "training", "serving", "gate", "monitoring"})
        if unknown:
            raise ConfigError(f"{where}.models.{name}: unknown field(s) {unknown}")
        path = spec.get("path", f"models/{name}")
        models[name] = ModelConfig(
            name=name,
            path=path,
            endpoint=spec.get("endpoint", name),
            params=spec.get("params", f"{path}/params.yaml"),
            training=_training(spec, f"{where}.models.{name}"),
            serving=_section(spec, "serving", Serving, f"{where}.models.{name}"),
            gate=_gate(spec, f"{where}.models.{name}"),
            monitoring=_monitoring(spec, f"{where}.models.{name}", monitoring),
        )
    return Config(
        target=raw["target"],
        project=raw["project"],
        region=raw["region"],
        bucket=raw["bucket"],
        models=models,
        tracker=_section(raw, "tracker", Tracker, where),
        web=_section(raw, "web", WebConfig, where),
        infra=_infra(raw, where),
        monitoring=monitoring,
        root=root,
    )


def load(root: Path = Path(".")) -> Config:
    """Reads `root/edge.yaml`."""
    import yaml

    path = root / CONFIG_FILE
    if not path.exists():
        raise ConfigError(f"no {CONFIG_FILE} in {root.resolve()}: run `invoke init` first")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{CONFIG_FILE} is not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    return parse(raw, root)
