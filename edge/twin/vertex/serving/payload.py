"""Predict bodies: input specs, instances (decoded by the HTTP layer's strict JSON parser) checked
and stacked into batch arrays, predictions formatted back. numpy is imported only where needed."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.twin.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """One input of the serving signature, as seen by a single instance."""

    name: str
    dtype: Any  # numpy dtype the model takes
    dtype_name: str  # TensorFlow's name for it: float32, int64, string...
    kind: str  # "float", "int", "bool" or "string"
    shape: tuple[int | None, ...]  # per instance, without the batch dimension


_ACCEPTED_KINDS = {"float": "fiu", "int": "iu", "bool": "b"}  # numpy kinds JSON may give
_KIND_NAMES = {
    "f": "floats",
    "i": "integers",
    "u": "integers",
    "b": "booleans",
    "U": "strings",
    "S": "strings",
    "O": "nulls, objects or mixed values",
}


# ---------------------------------------------------------------- instances


def format_shape(shape: tuple[int | None, ...]) -> str:
    """A shape as the error messages show it: [None, 3]."""
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


def _shape_matches(got: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(got) == len(expected) and all(e is None or e == g for g, e in zip(got, expected, strict=False))


def _decode_strings(value: Any, where: str, spec: InputSpec) -> Any:
    """Nested JSON strings (or {"b64": ...} objects) turned into bytes."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list):
        return [_decode_strings(v, where, spec) for v in value]
    if isinstance(value, dict) and value.keys() == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise InvalidArgument(f"{where}: 'b64' value is not valid base64") from None
    raise InvalidArgument(f"{where}: expected strings for {spec.dtype_name} input, got {type(value).__name__}")


def _cast(arr: np.ndarray, spec: InputSpec, where: str) -> np.ndarray:
    """Numeric `arr` in the model's dtype, or InvalidArgument naming the problem at `where`."""
    import numpy as np

    if arr.dtype.kind not in _ACCEPTED_KINDS[spec.kind]:
        got = _KIND_NAMES.get(arr.dtype.kind, str(arr.dtype))
        raise InvalidArgument(f"{where}: expected {spec.dtype_name} values, got {got}")
    if spec.kind == "int" and arr.size:
        info = np.iinfo(spec.dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise InvalidArgument(f"{where}: value out of range for {spec.dtype_name}")
    with np.errstate(over="ignore"):  # overflow shows up as Infinity, refused below
        cast = arr.astype(spec.dtype, copy=False)
    if spec.kind == "float" and not np.isfinite(cast).all():
        raise InvalidArgument(f"{where}: value is NaN, Infinity or out of range for {spec.dtype_name}")
    return cast


def _uneven(where: str, spec: InputSpec) -> InvalidArgument:
    return InvalidArgument(f"{where}: nested lists have uneven lengths; expected shape {format_shape(spec.shape)}")


def _instance_array(spec: InputSpec, index: int, value: Any) -> np.ndarray:
    import numpy as np

    where = f"instance {index}, input '{spec.name}'"
    if spec.kind == "string":
        value = _decode_strings(value, where, spec)
    try:
        arr = np.asarray(value, dtype=object if spec.kind == "string" else None)
    except ValueError:
        raise _uneven(where, spec) from None
    if spec.kind == "string" and not all(isinstance(v, bytes) for v in arr.flat):
        raise _uneven(where, spec)
    if not _shape_matches(arr.shape, spec.shape):
        raise InvalidArgument(f"{where}: expected shape {format_shape(spec.shape)}, got {format_shape(arr.shape)}")
    return arr if spec.kind == "string" else _cast(arr, spec, where)


def stack_input(spec: InputSpec, values: list) -> np.ndarray:
    """One input's values of all instances as a batch array in the model's dtype.

    Tries one numpy conversion of the whole list; when that fails, converts instance by
    instance so that the error names the offending instance.
    """
    import numpy as np

    if spec.kind != "string":
        try:
            arr = np.asarray(values)
        except ValueError:
            arr = None
        if (
            arr is not None
            and arr.dtype.kind in _ACCEPTED_KINDS[spec.kind]
            and _shape_matches(arr.shape[1:], spec.shape)
        ):
            try:
                return _cast(arr, spec, "")
            except InvalidArgument:
                pass  # find the instance to blame below
    arrays = [_instance_array(spec, i, v) for i, v in enumerate(values)]
    for i, arr in enumerate(arrays[1:], start=1):
        if arr.shape != arrays[0].shape:
            raise InvalidArgument(
                f"instance {i}, input '{spec.name}': shape "
                f"{format_shape(arr.shape)} differs from instance 0's "
                f"{format_shape(arrays[0].shape)}",
            )
    return np.stack(arrays)


def parse_instances(payload: Any, inputs: list[InputSpec], max_instances: int) -> tuple[dict[str, np.ndarray], int]:
    """The batch arrays of a decoded predict request, and its number of instances."""
    if not isinstance(payload, dict):
        raise InvalidArgument(
            f"request body must be a JSON object with an 'instances' list, got {type(payload).__name__}"
        )
    if "instances" not in payload:
        raise InvalidArgument("request body has no 'instances' key")
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidArgument(f"'instances' must be a list, got {type(instances).__name__}")
    if not instances:
        raise InvalidArgument("'instances' is empty; send at least one instance")
    if len(instances) > max_instances:
        raise InvalidArgument(
            f"request has {len(instances)} instances; at most {max_instances} instances are allowed per request"
        )
    if len(inputs) == 1:
        return {inputs[0].name: stack_input(inputs[0], _bare_values(instances, inputs[0]))}, len(instances)
    names = {spec.name for spec in inputs}
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise InvalidArgument(
                f"instance {i} must be an object keyed by input name "
                f"({', '.join(sorted(names))}): the model has several inputs",
            )
        if inst.keys() != names:
            missing, unknown = names - inst.keys(), inst.keys() - names
            problem = (
                f"is missing input(s) {', '.join(sorted(missing))}"
                if missing
                else f"has unknown input(s) {', '.join(sorted(unknown))}"
            )
            raise InvalidArgument(f"instance {i} {problem}; the model's inputs are {', '.join(sorted(names))}")
    return ({spec.name: stack_input(spec, [inst[spec.name] for inst in instances]) for spec in inputs}, len(instances))


def _bare_values(instances: list, spec: InputSpec) -> list:
    """The instances of a one-input model, each unwrapped from {name: value} if so sent."""
    values = instances
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            continue
        if inst.keys() == {spec.name}:
            values = values if values is not instances else list(instances)
            values[i] = inst[spec.name]
        elif not (spec.kind == "string" and inst.keys() == {"b64"}):
            raise InvalidArgument(
                f"instance {i} is an object with keys "
                f"{', '.join(sorted(map(str, inst)))}; the model has one "
                f"input, '{spec.name}': send its value, or an object with "
                "that key",
            )
    return values


# ---------------------------------------------------------------- predictions


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _json_rows(arr: np.ndarray) -> list:
    if arr.dtype.kind in "OSU":  # objects, bytes, strings (a scikit-learn classifier's class names, say)
        return _json_value(arr.tolist())
    if arr.dtype.kind not in "fiub":  # bfloat16 and other extension dtypes
        arr = arr.astype("float32")
    return arr.tolist()


def format_predictions(outputs: dict[str, np.ndarray]) -> list:
    """Per-row JSON predictions: bare values for one output, else objects by name."""
    rows = {name: _json_rows(arr) for name, arr in outputs.items()}
    if len(rows) == 1:
        return next(iter(rows.values()))
    n = len(next(iter(rows.values())))
    return [{name: values[i] for name, values in rows.items()} for i in range(n)]
