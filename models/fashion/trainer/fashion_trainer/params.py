"""The `train:` section of params.yaml, as passed to the trainer with --params-json, and overrides of single
params as `--name=value` arguments (what a Vertex hyperparameter tuning trial appends to the job's arguments)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any


class ParamsError(ValueError):
    """--params-json is not a valid `train:` section; the message is one line."""


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters of one training run."""

    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    filters: list[int]  # one 3x3 conv + 2x2 max-pool per entry
    dense: int
    dropout: float
    train_limit: int  # 0 = all training rows


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


_CHECKS = {
    "epochs": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "learning_rate": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "filters": (
        lambda v: isinstance(v, list) and 1 <= len(v) <= 3 and all(_is_int(f) and f >= 1 for f in v),
        "a list of 1 to 3 integers >= 1",
    ),
    "dense": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "dropout": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "train_limit": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0 = all rows)"),
}


def override_value(name: str, text: str) -> Any:
    """The value of `--name=text` in the type of param `name`: a trial passes integers as "64" (or "64.0"), numbers
    as "0.001", lists such as `filters` as "32,64" or "[32, 64]"; ParamsError if it is not one."""
    current = {f.name: f.type for f in fields(TrainParams)}.get(name)
    try:
        if current == "list[int]":
            return [_integer(v) for v in text.strip("[]").split(",")]
        if current == "int":
            return _integer(text)
        return float(text)
    except (ValueError, OverflowError):
        wanted = "a list of integers" if current == "list[int]" else "a number"
        raise ParamsError(f"--{name}={text!r} is not {wanted}") from None


def _integer(text: str) -> int:
    value = float(text)
    if value != int(value):
        raise ValueError(text)
    return int(value)


def parse_params(text: str, overrides: dict[str, str] | None = None) -> TrainParams:
    """Parses and validates the JSON object, with `overrides` (param -> text of a `--param=value` argument) in
    place of its values; raises ParamsError naming the first problem."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamsError(f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"expected a JSON object, got {type(raw).__name__}")
    raw.update({name: override_value(name, value) for name, value in (overrides or {}).items()})
    names = [f.name for f in fields(TrainParams)]
    missing = [n for n in names if n not in raw]
    unknown = sorted(set(raw) - set(names))
    if missing or unknown:
        raise ParamsError(
            "; ".join(filter(None, [missing and f"missing keys {missing}", unknown and f"unknown keys {unknown}"]))
        )
    for name in names:
        check, wanted = _CHECKS[name]
        if not check(raw[name]):
            raise ParamsError(f"{name} must be {wanted}, got {json.dumps(raw[name])}")
    values = dict(raw)
    values["learning_rate"] = float(values["learning_rate"])
    values["dropout"] = float(values["dropout"])
    return TrainParams(**values)
