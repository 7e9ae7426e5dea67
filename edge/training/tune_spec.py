"""The `tune:` section of a model's params file, checked, as the Vertex SDK's hyperparameter tuning arguments.

tune:
  metric: val_accuracy        # what the trainer reports with cloudml-hypertune's file
  goal: MAXIMIZE              # or MINIMIZE
  max_trials: 8
  parallel_trials: 2
  max_failed_trials: 0        # 0: Vertex decides (the twin: the job fails only if every trial fails)
  algorithm: RANDOM_SEARCH    # or GRID_SEARCH; left out: Vertex's default (Bayesian; the twin: random)
  measurement: LAST_MEASUREMENT   # or BEST_MEASUREMENT (Vertex's default)
  parameters:                 # keys of `train:`; each trial passes its values as --name=value
    learning_rate: {type: DOUBLE, min: 0.0005, max: 0.005, scale: LOG}
    dense: {type: DISCRETE, values: [64, 128, 256]}
    batch_size: {type: INTEGER, min: 64, max: 256, scale: LINEAR}
    optimizer: {type: CATEGORICAL, values: [adam, sgd]}
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.config import ModelConfig
from edge.project import Project
from edge.training import TrainingError
from edge.training.inputs import read_params

TYPES = ("DOUBLE", "INTEGER", "DISCRETE", "CATEGORICAL")
SCALES = {"LINEAR": "linear", "LOG": "log", "REVERSE_LOG": "reverse_log"}
ALGORITHMS = {"RANDOM_SEARCH": "random", "GRID_SEARCH": "grid"}
MEASUREMENTS = {"LAST_MEASUREMENT": "last", "BEST_MEASUREMENT": "best"}
FIELDS = {"metric", "goal", "max_trials", "parallel_trials", "max_failed_trials", "algorithm", "measurement"}


@dataclass(frozen=True)
class TuneSpec:
    metric: str
    goal: str  # MAXIMIZE or MINIMIZE
    max_trials: int
    parallel_trials: int
    max_failed_trials: int
    algorithm: str | None  # the SDK's search_algorithm: "random", "grid", or None (Vertex's default)
    measurement: str  # the SDK's measurement_selection: "last" or "best"
    parameters: dict[str, dict]  # name -> {type, min, max, values, scale}

    def parameter_specs(self) -> dict:
        """The SDK's `parameter_spec` argument (google.cloud.aiplatform.hyperparameter_tuning)."""
        from google.cloud.aiplatform import hyperparameter_tuning as hpt

        specs = {}
        for name, p in self.parameters.items():
            scale = SCALES[p.get("scale", "LINEAR")]
            if p["type"] == "DOUBLE":
                specs[name] = hpt.DoubleParameterSpec(min=p["min"], max=p["max"], scale=scale)
            elif p["type"] == "INTEGER":
                specs[name] = hpt.IntegerParameterSpec(min=p["min"], max=p["max"], scale=scale)
            elif p["type"] == "DISCRETE":
                specs[name] = hpt.DiscreteParameterSpec(values=p["values"], scale=scale)
            else:
                specs[name] = hpt.CategoricalParameterSpec(values=[str(v) for v in p["values"]])
        return specs

    def better(self, a: float, b: float) -> bool:
        return a > b if self.goal == "MAXIMIZE" else a < b


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(raw: dict, key: str, default: int, where: str, low: int = 1) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise TrainingError(f"{where}.{key} must be a whole number of at least {low}, got {value!r}")
    return value


def _parameter(name: str, p: object, train: dict, where: str) -> dict:
    """One parameter, checked: a key of `train:` with a type and its range or values."""
    where = f"{where}.parameters.{name}"
    if name not in train:
        raise TrainingError(f"{where}: {name!r} is not a key of `train:` (the trainer takes --NAME=VALUE for those)")
    if not isinstance(p, dict) or p.get("type") not in TYPES:
        raise TrainingError(f"{where} needs a type: one of {', '.join(TYPES)}")
    if p.get("scale", "LINEAR") not in SCALES:
        raise TrainingError(f"{where}.scale must be one of {', '.join(SCALES)}, got {p.get('scale')!r}")
    if p["type"] in ("DOUBLE", "INTEGER"):
        low, high = p.get("min"), p.get("max")
        whole = p["type"] == "INTEGER"
        if not (_number(low) and _number(high)) or whole and not (isinstance(low, int) and isinstance(high, int)):
            raise TrainingError(f"{where} needs min and max ({'whole numbers' if whole else 'numbers'})")
        if low >= high or "LOG" in p.get("scale", "LINEAR") and low <= 0:
            raise TrainingError(f"{where}: min must be below max (and above 0 on a log scale), got {low} and {high}")
    else:
        values = p.get("values")
        numeric = p["type"] == "DISCRETE"
        if not isinstance(values, list) or not values or numeric and not all(_number(v) for v in values):
            raise TrainingError(f"{where} needs a list of values ({'numbers' if numeric else 'names'})")
    return p


def load_tune_spec(project: Project, model: ModelConfig, train: dict) -> TuneSpec:
    """The model's `tune:` section, checked against its `train:` params; TrainingError (one line) otherwise."""
    raw = read_params(project, model).get("tune")
    where = f"{model.params}: tune"
    if not isinstance(raw, dict):
        raise TrainingError(f"{model.params} has no `tune:` section (metric, goal, parameters...: see README)")
    unknown = sorted(set(raw) - FIELDS - {"parameters"})
    if unknown:
        raise TrainingError(f"{where}: unknown field(s) {unknown}; known: {sorted(FIELDS | {'parameters'})}")
    if not isinstance(raw.get("metric"), str) or raw.get("goal") not in ("MAXIMIZE", "MINIMIZE"):
        raise TrainingError(f"{where} needs a metric (the trainer reports it) and a goal: MAXIMIZE or MINIMIZE")
    algorithm = raw.get("algorithm")
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise TrainingError(f"{where}.algorithm must be one of {', '.join(ALGORITHMS)} (or left out: Vertex's default)")
    measurement = raw.get("measurement", "LAST_MEASUREMENT")
    if measurement not in MEASUREMENTS:
        raise TrainingError(f"{where}.measurement must be one of {', '.join(MEASUREMENTS)}")
    parameters = raw.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise TrainingError(f"{where}.parameters must map `train:` keys to their search space")
    checked = {name: _parameter(name, p, train, where) for name, p in parameters.items()}
    if algorithm == "GRID_SEARCH" and any(p["type"] == "DOUBLE" for p in checked.values()):
        raise TrainingError(f"{where}: GRID_SEARCH takes INTEGER, DISCRETE and CATEGORICAL parameters only")
    return TuneSpec(
        metric=raw["metric"],
        goal=raw["goal"],
        max_trials=_count(raw, "max_trials", 4, where),
        parallel_trials=_count(raw, "parallel_trials", 2, where),
        max_failed_trials=_count(raw, "max_failed_trials", 0, where, low=0),
        algorithm=ALGORITHMS.get(algorithm),
        measurement=MEASUREMENTS[measurement],
        parameters=checked,
    )
