"""The `train:` section of params.yaml as the job gets it (--params-json), with single params overridden by
`--name=value` arguments, as a Vertex hyperparameter tuning trial appends them to the job's arguments."""

from __future__ import annotations

import json
from typing import Any


class ParamsError(ValueError):
    """--params-json or an override is not valid; the message is one line."""


def _convert(name: str, text: str, current: Any) -> Any:
    """`text` in the type of the param's value in params.yaml (a trial passes integers as "64" or "64.0")."""
    try:
        if isinstance(current, bool):
            return text.lower() in ("1", "true", "yes")
        if isinstance(current, int):
            number = float(text)
            if number != int(number):
                raise ValueError
            return int(number)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, list):
            return [_convert(name, part, current[0] if current else 0) for part in text.strip("[]").split(",")]
    except ValueError:
        raise ParamsError(f"--{name}={text}: expected a value like {current!r}") from None
    return text


def parse(params_json: str, extra: list[str]) -> dict:
    """The params of --params-json, each `--name=value` of `extra` replacing one; ParamsError otherwise."""
    try:
        params = json.loads(params_json)
    except ValueError as exc:
        raise ParamsError(f"--params-json is not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise ParamsError("--params-json must be a JSON object (the `train:` section of params.yaml)")
    for argument in extra:
        name, equals, text = argument.removeprefix("--").partition("=")
        if not argument.startswith("--") or not equals or name not in params:
            known = ", ".join(sorted(params))
            raise ParamsError(f"unknown argument {argument!r}: params are overridden as --name=value ({known})")
        params[name] = _convert(name, text, params[name])
    return params
