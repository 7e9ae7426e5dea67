"""Rows in and out: JSON rows of `insertAll` checked and converted for DuckDB, DuckDB values written
as BigQuery's `{"f": [{"v": ...}]}` cells (every scalar a string, REPEATED a list of cells, RECORD an
`f` list), the format google-cloud-bigquery parses.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from edge.twin.bigquery.errors import InvalidQuery

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class RowError(ValueError):
    """A value BigQuery would refuse: `location` is the field's path, the message BigQuery's wording."""

    def __init__(self, location: str, message: str):
        super().__init__(message)
        self.location = location
        self.message = message


# ---------------------------------------------------------------------------------------------- in


class RowCoercer:
    """Turns the `json` object of an insertAll row into a tuple in schema order, or raises RowError."""

    def __init__(self, fields: list[dict]):
        self.fields = fields
        self._record = _record_converter(fields, "")

    def __call__(self, row, ignore_unknown: bool) -> tuple:
        if not isinstance(row, dict):
            raise RowError("", "Row must be a JSON object.")
        return tuple(self._record(row, ignore_unknown).values())


def _record_converter(fields: list[dict], prefix: str) -> Callable[[dict, bool], dict]:
    converters = [(f["name"], f["name"].lower(), _field_converter(f, prefix)) for f in fields]
    known = {lower for _, lower, _ in converters}

    def convert(value: dict, ignore_unknown: bool) -> dict:
        lowered = {str(k).lower(): v for k, v in value.items()}
        if not ignore_unknown:
            for key in value:
                if str(key).lower() not in known:
                    raise RowError(f"{prefix}{key}", f"no such field: {prefix}{key}.")
        return {name: conv(lowered.get(lower), ignore_unknown) for name, lower, conv in converters}

    return convert


def _field_converter(field: dict, prefix: str) -> Callable:
    path = f"{prefix}{field['name']}"
    if field["type"] == "RECORD":
        record = _record_converter(field["fields"], f"{path}.")

        def scalar(value, ignore_unknown):
            if not isinstance(value, dict):
                raise RowError(path, f"This field: {path} is not a record.")
            return record(value, ignore_unknown)
    else:
        parse = SCALAR_PARSERS[field["type"]]

        def scalar(value, ignore_unknown):
            if isinstance(value, (dict, list)) and field["type"] != "JSON":
                raise RowError(
                    path,
                    f"This field: {path} is not a record."
                    if isinstance(value, dict)
                    else f"Array specified for non-repeated field: {path}.",
                )
            try:
                return parse(value)
            except (ValueError, TypeError, ArithmeticError):
                message = f"Cannot convert value to {field['type'].lower()} (bad value): {value!r:.200}"
                raise RowError(path, message) from None

    if field["mode"] == "REPEATED":

        def repeated(value, ignore_unknown):
            if value is None:
                return []
            if not isinstance(value, list):
                raise RowError(path, f"Field {path} is REPEATED: its value must be an array.")
            if any(item is None for item in value):
                raise RowError(path, f"Array cannot have a null element; error in writing field {path}")
            return [scalar(item, ignore_unknown) for item in value]

        return repeated

    required = field["mode"] == "REQUIRED"

    def single(value, ignore_unknown):
        if value is None:
            if required:
                raise RowError(path, f"Missing required field: {path}.")
            return None
        return scalar(value, ignore_unknown)

    return single


def _string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return value if isinstance(value, str) else json.dumps(value)
    raise TypeError


def _integer(value) -> int:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        value = int(value)
    elif isinstance(value, str):
        value = int(value.strip())
    if not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
        raise ValueError
    return value


_FLOAT_WORDS = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf, "-inf": -math.inf}


def _float(value) -> float:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, str):
        word = value.strip().lower()
        return _FLOAT_WORDS[word] if word in _FLOAT_WORDS else float(word)
    return float(value)


def _decimal(scale: int, integer_digits: int) -> Callable:
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** integer_digits

    def parse(value) -> Decimal:
        if isinstance(value, bool):
            raise TypeError
        number = Decimal(value if isinstance(value, str) else repr(value) if isinstance(value, float) else value)
        number = number.quantize(quantum, rounding=ROUND_HALF_UP)
        if not number.is_finite() or abs(number) >= limit:
            raise InvalidOperation
        return number

    return parse


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError


_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?)?"
    r"\s*(Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?",
    re.IGNORECASE,
)


def parse_timestamp(value) -> datetime:
    """A UTC datetime from BigQuery's timestamp forms: RFC 3339 / `YYYY-MM-DD HH:MM:SS[.ffffff][+zz:zz| UTC]`,
    or a number of seconds since the epoch."""
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, (int, float)):
        return EPOCH + timedelta(microseconds=round(value * 1_000_000))
    parts = _datetime_parts(value)
    zone = parts.pop()
    moment = datetime(*parts, tzinfo=UTC)
    if zone and zone.upper() not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    return moment


def _datetime_parts(value) -> list:
    match = _TIMESTAMP.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    return [int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micros, zone]


def _datetime(value) -> datetime:
    parts = _datetime_parts(value)
    if parts.pop() is not None:
        raise ValueError  # a DATETIME has no time zone
    return datetime(*parts)


def _date(value) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value.strip()):
        raise ValueError
    year, month, day = (int(p) for p in value.strip().split("-"))
    return date(year, month, day)


def _time(value) -> time:
    if not isinstance(value, str):
        raise TypeError
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?", value.strip())
    if match is None:
        raise ValueError
    hour, minute, second, fraction = match.groups()
    return time(int(hour), int(minute), int(second or 0), int((fraction or "0")[:6].ljust(6, "0")))


def _bytes(value) -> bytes:
    if not isinstance(value, str):
        raise TypeError
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(value)


def _json(value) -> str:
    """JSON as compact text; a string must itself be JSON text (as BigQuery's insertAll takes it)."""
    parsed = json.loads(value) if isinstance(value, str) else value
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _geography(value) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


SCALAR_PARSERS: dict[str, Callable] = {
    "STRING": _string,
    "BYTES": _bytes,
    "INTEGER": _integer,
    "FLOAT": _float,
    "NUMERIC": _decimal(9, 29),
    "BIGNUMERIC": _decimal(18, 20),
    "BOOLEAN": _boolean,
    "TIMESTAMP": parse_timestamp,
    "DATE": _date,
    "TIME": _time,
    "DATETIME": _datetime,
    "GEOGRAPHY": _geography,
    "JSON": _json,
}


# --------------------------------------------------------------------------------------------- out


def row_encoder(fields: list[dict], timestamps: str = "float") -> Callable[[tuple], dict]:
    """A function from a DuckDB row (values in `fields` order) to BigQuery's `{"f": [{"v": ...}]}` row.

    `timestamps` is the API's format option: "int64" (microseconds, as google-cloud-bigquery asks),
    "iso" (ISO8601_STRING) or "float" (seconds, BigQuery's default).
    """
    encoders = [_cell_encoder(f, timestamps) for f in fields]

    def encode(row) -> dict:
        return {"f": [{"v": enc(value)} for enc, value in zip(encoders, row, strict=True)]}

    return encode


def _cell_encoder(field: dict, timestamps: str) -> Callable:
    if field["type"] == "RECORD":
        inner = [_cell_encoder(f, timestamps) for f in field["fields"]]

        def scalar(value):
            return {"f": [{"v": enc(v)} for enc, v in zip(inner, value.values(), strict=True)]}
    else:
        scalar = _SCALAR_ENCODERS[field["type"]] if field["type"] != "TIMESTAMP" else _TIMESTAMP_ENCODERS[timestamps]

    if field["mode"] == "REPEATED":
        return lambda value: [] if value is None else [{"v": _not_null(scalar, item, field)} for item in value]
    return lambda value: None if value is None else scalar(value)


def _not_null(encode: Callable, item, field: dict):
    if item is None:
        raise InvalidQuery(f"Array cannot have a null element; error in writing field {field['name']}")
    return encode(item)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _micros(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


_TIMESTAMP_ENCODERS = {
    "int64": lambda v: str(_micros(v)),
    "float": lambda v: repr(_micros(v) / 1_000_000),
    "iso": lambda v: v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
}

_SCALAR_ENCODERS: dict[str, Callable] = {
    "STRING": str,
    "GEOGRAPHY": str,
    "JSON": str,
    "INTEGER": str,
    "FLOAT": _float_text,
    "NUMERIC": _decimal_text,
    "BIGNUMERIC": _decimal_text,
    "BOOLEAN": lambda v: "true" if v else "false",
    "DATE": lambda v: v.isoformat(),
    "TIME": lambda v: v.isoformat(),
    "DATETIME": lambda v: v.isoformat(),
    "BYTES": lambda v: base64.b64encode(v).decode("ascii"),
}


def approximate_size(row: tuple) -> int:
    """Bytes a row takes in BigQuery's accounting, roughly: string lengths, 8 per other scalar."""
    size = 0
    for value in row:
        if isinstance(value, (str, bytes)):
            size += len(value) + 2
        elif isinstance(value, (list, tuple)):
            size += approximate_size(value)
        elif isinstance(value, dict):
            size += approximate_size(tuple(value.values()))
        else:
            size += 8
    return size
