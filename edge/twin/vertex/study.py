"""A hyperparameter tuning job's study: its metric, parameters and search, as the twin understands them.

The SDK's REST transport sends enums as numbers (`rest_numeric_enums`), a person's JSON as names: both are read.
The twin draws trials by random search (RANDOM_SEARCH, and in place of Vertex's default Bayesian optimisation,
which it does not emulate) or walks the grid (GRID_SEARCH: every combination of INTEGER, DISCRETE and CATEGORICAL
values, in order, until the grid or the trials run out), seeded by the job's id.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from edge.twin.errors import InvalidArgument, Unimplemented

GOALS = {0: "GOAL_TYPE_UNSPECIFIED", 1: "MAXIMIZE", 2: "MINIMIZE"}
ALGORITHMS = {0: "ALGORITHM_UNSPECIFIED", 2: "GRID_SEARCH", 3: "RANDOM_SEARCH"}
SCALES = {0: "SCALE_TYPE_UNSPECIFIED", 1: "UNIT_LINEAR_SCALE", 2: "UNIT_LOG_SCALE", 3: "UNIT_REVERSE_LOG_SCALE"}
SELECTIONS = {0: "MEASUREMENT_SELECTION_TYPE_UNSPECIFIED", 1: "LAST_MEASUREMENT", 2: "BEST_MEASUREMENT"}
VALUE_SPECS = ("doubleValueSpec", "integerValueSpec", "discreteValueSpec", "categoricalValueSpec")
UNSPECIFIED_ALGORITHM_NOTE = (
    "Vertex's default search algorithm (Bayesian optimisation, Vizier) is not emulated: "
    "the twin draws this job's trials by random search."
)


def enum_name(value: object, names: dict[int, str], field: str) -> str:
    """An enum given as its number or its name, as its name; InvalidArgument otherwise."""
    if isinstance(value, int) and value in names:
        return names[value]
    if isinstance(value, str) and value in names.values():
        return value
    raise InvalidArgument(f"{field}: {value!r} is not one of {', '.join(names.values())}.")


@dataclass(frozen=True)
class Parameter:
    id: str
    kind: str  # one of VALUE_SPECS
    low: float = 0.0
    high: float = 0.0
    values: tuple = ()
    scale: str = "SCALE_TYPE_UNSPECIFIED"

    def draw(self, rng: random.Random) -> float | int | str:
        """One random value, on the parameter's scale."""
        if self.kind in ("discreteValueSpec", "categoricalValueSpec"):
            return rng.choice(self.values)
        if self.scale in ("UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE"):
            drawn = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            if self.scale == "UNIT_REVERSE_LOG_SCALE":  # dense near the top of the range
                drawn = self.low + self.high - drawn
        else:
            drawn = rng.uniform(self.low, self.high)
        if self.kind == "integerValueSpec":
            return min(max(round(drawn), int(self.low)), int(self.high))
        return drawn

    def grid(self) -> list:
        if self.kind == "integerValueSpec":
            return list(range(int(self.low), int(self.high) + 1))
        return list(self.values)


@dataclass(frozen=True)
class Study:
    metric: str
    goal: str  # MAXIMIZE or MINIMIZE
    parameters: tuple[Parameter, ...]
    algorithm: str
    selection: str  # LAST_MEASUREMENT or BEST_MEASUREMENT

    def suggestions(self, seed: int) -> Iterator[dict]:
        """The parameters of successive trials: {parameter id: value}."""
        if self.algorithm == "GRID_SEARCH":
            for point in itertools.product(*(p.grid() for p in self.parameters)):
                yield {p.id: value for p, value in zip(self.parameters, point, strict=True)}
            return
        rng = random.Random(seed)
        while True:
            yield {p.id: p.draw(rng) for p in self.parameters}

    def better(self, a: float, b: float) -> bool:
        """Whether metric value `a` beats `b` for the study's goal."""
        return a > b if self.goal == "MAXIMIZE" else a < b


def parse_study(spec: dict) -> Study:
    """The study of a `studySpec`; InvalidArgument (or Unimplemented) naming what the twin cannot take."""
    metrics = spec.get("metrics") or []
    if len(metrics) != 1 or not metrics[0].get("metricId"):
        raise Unimplemented("The twin tunes exactly one metric: study_spec.metrics needs one metric_id and goal.")
    goal = enum_name(metrics[0].get("goal", 0), GOALS, "study_spec.metrics.goal")
    if goal == "GOAL_TYPE_UNSPECIFIED":
        raise InvalidArgument("study_spec.metrics.goal must be MAXIMIZE or MINIMIZE.")
    parameters = tuple(_parameter(p) for p in spec.get("parameters") or [])
    if not parameters:
        raise InvalidArgument("study_spec.parameters must have at least one parameter.")
    algorithm = enum_name(spec.get("algorithm", 0), ALGORITHMS, "study_spec.algorithm")
    if algorithm == "GRID_SEARCH" and any(p.kind == "doubleValueSpec" for p in parameters):
        raise InvalidArgument(
            "GRID_SEARCH needs INTEGER, DISCRETE or CATEGORICAL parameters; "
            f"{next(p.id for p in parameters if p.kind == 'doubleValueSpec')} is DOUBLE."
        )
    selection = enum_name(spec.get("measurementSelectionType", 0), SELECTIONS, "study_spec.measurement_selection_type")
    if selection == "MEASUREMENT_SELECTION_TYPE_UNSPECIFIED":
        selection = "BEST_MEASUREMENT"  # Vertex's default
    return Study(metrics[0]["metricId"], goal, parameters, algorithm, selection)


def _parameter(spec: dict) -> Parameter:
    pid = spec.get("parameterId")
    kinds = [k for k in VALUE_SPECS if k in spec]
    if not pid or len(kinds) != 1:
        raise InvalidArgument(f"Parameter {pid!r} needs a parameter_id and exactly one value spec.")
    if spec.get("conditionalParameterSpecs"):
        raise Unimplemented(f"Parameter {pid}: conditional parameters are not emulated by the twin.")
    kind, values = kinds[0], spec[kinds[0]]
    scale = enum_name(spec.get("scaleType", 0), SCALES, f"parameter {pid}: scale_type")
    if kind in ("discreteValueSpec", "categoricalValueSpec"):
        chosen = tuple(values.get("values") or ())
        if not chosen:
            raise InvalidArgument(f"Parameter {pid}: values must not be empty.")
        return Parameter(pid, kind, values=chosen, scale=scale)
    try:
        low, high = float(values["minValue"]), float(values["maxValue"])
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument(f"Parameter {pid}: min_value and max_value are required numbers.") from None
    if not low <= high or "LOG" in scale and low <= 0:
        raise InvalidArgument(f"Parameter {pid}: needs min_value <= max_value (and above 0 on a log scale).")
    return Parameter(pid, kind, low, high, scale=scale)


def argument(value: float | int | str) -> str:
    """A trial's parameter value as the job's `--id=value` argument: integers without a decimal point."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
