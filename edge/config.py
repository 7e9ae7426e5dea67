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


@dataclass(frozen=True)
class Training:
    image: str = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-15.py310:latest"
    machine_type: str = "n1-standard-4"
    package: str = "trainer"  # the trainer package's directory, under the model's path
    module: str = "trainer.task"  # what the job runs: python -m <module>


@dataclass(frozen=True)
class Serving:
    image: str = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
    machine_type: str = "n1-standard-2"
    min_replicas: int = 1
    max_replicas: int = 1


@dataclass(frozen=True)
class ModelConfig:
    name: str
    path: str
    endpoint: str
    params: str
    training: Training = field(default_factory=Training)
    serving: Serving = field(default_factory=Serving)


@dataclass(frozen=True)
class Tracker:
    """The Omniboard + MongoDB VM on gcp (Terraform's experiment_tracker module)."""

    enabled: bool = True
    machine_type: str = "e2-small"
    zone: str = ""  # default: <region>-b


@dataclass(frozen=True)
class WebConfig:
    service: str = "fashion-web"
    image: str = ""  # Cloud Run image; built from services/fashion-web/Dockerfile
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
    unknown = sorted(set(raw) - {"target", "project", "region", "bucket", "models", "tracker", "web", "infra"})
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
    models = {}
    for name, spec in raw["models"].items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: model name {name!r} must be lower-case letters, digits and dashes")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}.models.{name} must be a mapping")
        unknown = sorted(set(spec) - {"path", "endpoint", "params", "training", "serving"})
        if unknown:
            raise ConfigError(f"{where}.models.{name}: unknown field(s) {unknown}")
        path = spec.get("path", f"models/{name}")
        models[name] = ModelConfig(
            name=name,
            path=path,
            endpoint=spec.get("endpoint", name),
            params=spec.get("params", f"{path}/params.yaml"),
            training=_section(spec, "training", Training, f"{where}.models.{name}"),
            serving=_section(spec, "serving", Serving, f"{where}.models.{name}"),
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
