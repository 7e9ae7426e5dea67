"""What is specific to one model comes from its folder (`models/<name>/`), never from edge itself.

    models/<name>/model.yaml   kind, class labels (or the file that holds them), what an instance is, the
                               smoke-test payload, the raw data
    models/<name>/hooks.py     Python the toolkit calls: seed the data, validate the train params and an instance,
                               the held-out instances for evaluation, perturbations for behavioural tests,
                               monitored features
    models/<name>/edge-entry.yaml  the model's entry under `models:` of edge.yaml, as `invoke init` writes a new one

Every hook is optional; edge says which one is missing when a command needs it. models/README.md documents these
files; `invoke model.init` (edge/scaffold.py) writes a new model's folder from a template.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType

from edge.config import ModelConfig
from edge.errors import EdgeError

SPEC_FILE = "model.yaml"
ENTRY_FILE = "edge-entry.yaml"
KINDS = ("classification",)


class ModelSpecError(EdgeError):
    """The model's folder does not say what a command needs; the message names the file and the fix."""


@dataclass(frozen=True)
class ModelSpec:
    """A model as its folder describes it."""

    name: str
    folder: Path  # absolute
    kind: str = "classification"
    labels: tuple[str, ...] = ()  # class names by class id
    instance: str = "an instance the model's serving signature takes"  # for messages
    payload: str = "test_payload.json"  # relative to the folder
    data: str | None = None  # the model's raw data (a DVC-tracked folder), relative to the project root
    hooks_file: str = "hooks.py"
    extra: dict = field(default_factory=dict)

    @property
    def payload_path(self) -> Path:
        return self.folder / self.payload

    @cached_property
    def hooks(self) -> ModuleType | None:
        """The model's hooks module, or None when it has none."""
        path = self.folder / self.hooks_file
        if not path.exists():
            return None
        spec = importlib.util.spec_from_file_location(f"edge_model_hooks_{self.name.replace('-', '_')}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def hook(self, name: str):
        """The hook `name` of the model's hooks.py; ModelSpecError when it is not there."""
        function = getattr(self.hooks, name, None) if self.hooks else None
        if function is None:
            raise ModelSpecError(f"{self.folder / self.hooks_file} has no `{name}` (models/README.md lists the hooks)")
        return function

    def label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)

    def check_instance(self, index: int, instance) -> None:
        """Raises ModelSpecError naming instance `index` if the model's `validate_instance` hook refuses it."""
        validate = getattr(self.hooks, "validate_instance", None) if self.hooks else None
        problem = validate(instance) if validate else None
        if problem:
            raise ModelSpecError(f"instance {index}: {problem} (expected {self.instance})")

    def read_prediction(self, prediction) -> dict:
        """A classification prediction in any of the prebuilt containers' shapes ({class_id, probabilities},
        a bare class id or label, or a list of probabilities) as {class_id, class_name, probability, probabilities}."""
        probabilities = None
        if isinstance(prediction, dict):
            probabilities = prediction.get("probabilities") or prediction.get("scores")
            raw = prediction.get("class_id", prediction.get("classes"))
        elif isinstance(prediction, list):
            probabilities, raw = prediction, None
        else:
            raw = prediction
        probabilities = [float(p) for p in probabilities] if probabilities else None
        if raw is None and probabilities:
            raw = max(range(len(probabilities)), key=probabilities.__getitem__)
        class_id = self._class_id(raw)
        probability = probabilities[class_id] if probabilities and 0 <= class_id < len(probabilities) else None
        return {
            "class_id": class_id,
            "class_name": self.label(class_id),
            "probability": probability,
            "probabilities": probabilities,
        }

    def _class_id(self, raw) -> int:
        if isinstance(raw, str) and raw in self.labels:
            return self.labels.index(raw)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ModelSpecError(f"{self.name} answered {raw!r}, which is not a class of {SPEC_FILE}") from None
        if not math.isfinite(value) or value != int(value):
            raise ModelSpecError(f"{self.name} answered {raw!r}, which is not a class id")
        return int(value)


def load_spec(root: Path, model: ModelConfig) -> ModelSpec:
    """The ModelSpec of `model` from `<root>/<model.path>/model.yaml` (defaults where it is silent)."""
    import yaml

    folder = (root / model.path).resolve()
    path = folder / SPEC_FILE
    raw = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", exc)
            raise ModelSpecError(f"{model.path}/{SPEC_FILE} is not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ModelSpecError(f"{model.path}/{SPEC_FILE} must be a mapping (kind, labels, instance, payload, data)")
    known = {"kind", "labels", "instance", "payload", "data", "hooks"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ModelSpecError(f"{model.path}/{SPEC_FILE}: unknown field(s) {unknown}; known: {sorted(known)}")
    kind = raw.get("kind", "classification")
    if kind not in KINDS:
        raise ModelSpecError(f"{model.path}/{SPEC_FILE}: kind must be one of {KINDS}, got {kind!r}")
    labels = raw.get("labels") or []
    if isinstance(labels, str):
        labels = _labels_from_file(folder, labels, f"{model.path}/{SPEC_FILE}")
    if not isinstance(labels, list) or not all(isinstance(x, (str, int)) for x in labels):
        raise ModelSpecError(
            f"{model.path}/{SPEC_FILE}: labels must be a list of class names by class id, or the name of a JSON "
            "file in the model's folder that holds one"
        )
    options = {k: str(raw[k]) for k in ("instance", "payload", "data") if raw.get(k) is not None}
    if raw.get("hooks"):
        options["hooks_file"] = str(raw["hooks"])
    return ModelSpec(name=model.name, folder=folder, kind=kind, labels=tuple(str(x) for x in labels), **options)


def _labels_from_file(folder: Path, name: str, where: str) -> list:
    """The class names in `folder/name`: a JSON list, or a JSON object with a `labels` list (say the schema a
    prepare step writes); none while that file does not exist yet (before the first prepare)."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder):
        raise ModelSpecError(f"{where}: labels file {name!r} must be inside the model's folder")
    if not path.exists():
        return []
    try:
        content = json.loads(path.read_text())
    except ValueError as exc:
        raise ModelSpecError(f"{where}: labels file {name} is not valid JSON: {exc}") from None
    return content.get("labels") if isinstance(content, dict) else content


def load_payload(spec: ModelSpec, path: Path | None = None) -> list:
    """The instances of a payload file (default: the model's own), each checked by the model's hook."""
    path = path or spec.payload_path
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelSpecError(f"payload file {path} not found") from None
    except ValueError as exc:
        raise ModelSpecError(f"payload file {path} is not valid JSON: {exc}") from None
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise ModelSpecError(f'{path} must be {{"instances": [...]}}, each instance {spec.instance}')
    for index, instance in enumerate(instances):
        spec.check_instance(index, instance)
    return instances
