"""The monitored features of a model, per instance: what its `features` hook computes (models/<name>/hooks.py:
`FEATURES = {name: "categorical" | "numeric"}` and `features(instances, predictions) -> {name: [value, ...]}`),
plus edge's own `valid_input` (whether the model's `validate_instance` hook accepts the instance).

The hook only ever sees the instances its `validate_instance` accepts, with their predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.models import ModelSpec, ModelSpecError

KINDS = ("categorical", "numeric")
VALID_INPUT = "valid_input"  # edge's own feature: "valid" or "invalid", by the model's validate_instance hook


@dataclass
class FeatureTable:
    """Feature name -> one value per valid instance (valid_input: one per instance), and the instances' order."""

    kinds: dict[str, str]
    values: dict[str, list]
    valid: list[bool]  # per instance, in the order given

    @property
    def instances(self) -> int:
        return len(self.valid)


def monitored_features(spec: ModelSpec) -> dict[str, str]:
    """name -> kind of every monitored feature: the model's FEATURES, then valid_input."""
    declared = getattr(spec.hooks, "FEATURES", None) if spec.hooks else None
    if declared is None:
        raise ModelSpecError(
            f"{spec.folder / spec.hooks_file} has no FEATURES: monitoring needs the model's features "
            "(FEATURES = {name: 'numeric' | 'categorical'} and features(instances, predictions))"
        )
    if not isinstance(declared, dict) or not declared:
        raise ModelSpecError(f"{spec.folder / spec.hooks_file}: FEATURES must map feature names to a kind")
    wrong = {name: kind for name, kind in declared.items() if kind not in KINDS or not isinstance(name, str)}
    if wrong:
        raise ModelSpecError(f"{spec.folder / spec.hooks_file}: FEATURES kinds must be one of {KINDS}, got {wrong}")
    if VALID_INPUT in declared:
        raise ModelSpecError(f"{spec.folder / spec.hooks_file}: FEATURES may not name {VALID_INPUT!r} (edge's own)")
    return {**declared, VALID_INPUT: "categorical"}


def compute_features(spec: ModelSpec, instances: list, predictions: list) -> FeatureTable:
    """The monitored features of `instances` and the model's `predictions` for them (one per instance)."""
    kinds = monitored_features(spec)
    if hasattr(instances, "tolist"):  # an array of instances: as lists, as they arrive in a request
        instances = instances.tolist()
    valid = [problem is None for problem in _problems(spec, instances)]
    kept = [i for i, ok in enumerate(valid) if ok]
    values: dict[str, list] = {name: [] for name in kinds if name != VALID_INPUT}
    if kept:
        computed = spec.hook("features")([instances[i] for i in kept], [predictions[i] for i in kept])
        missing = sorted(set(values) - set(computed or {}))
        if missing:
            raise ModelSpecError(f"{spec.folder / spec.hooks_file}: features() did not return {missing}")
        for name in values:
            column = list(computed[name])
            if len(column) != len(kept):
                raise ModelSpecError(
                    f"{spec.folder / spec.hooks_file}: features() returned {len(column)} values of {name!r} "
                    f"for {len(kept)} instances"
                )
            values[name] = column
    values[VALID_INPUT] = ["valid" if ok else "invalid" for ok in valid]
    return FeatureTable(kinds, values, valid)


def _problems(spec: ModelSpec, instances: list) -> list:
    """Why each instance is invalid (None: valid), by the model's `validate_instances` hook (a batch, for speed)
    or else its `validate_instance` hook; every instance is valid for a model that has neither."""
    batch = getattr(spec.hooks, "validate_instances", None) if spec.hooks else None
    if batch is not None:
        return list(batch(instances))
    single = getattr(spec.hooks, "validate_instance", None) if spec.hooks else None
    return [single(instance) if single else None for instance in instances]


def subset(table: FeatureTable, indexes: list[int]) -> FeatureTable:
    """The features of the instances at `indexes` (positions among all instances, valid or not)."""
    position = {}  # instance index -> its index among the valid ones
    for i, ok in enumerate(table.valid):
        if ok:
            position[i] = len(position)
    chosen = [position[i] for i in indexes if i in position]
    values = {
        name: ([column[i] for i in chosen] if name != VALID_INPUT else [column[i] for i in indexes])
        for name, column in table.values.items()
    }
    return FeatureTable(table.kinds, values, [table.valid[i] for i in indexes])
