"""BigQuery table schemas: validated as BigQuery does, mapped to DuckDB column types and back.

BigQuery's REST API names types the legacy way (INTEGER, FLOAT, BOOLEAN, RECORD) whichever name a
schema was created with; so does the twin. Modes are kept in the schema and enforced when rows
are inserted (DuckDB's columns are all nullable), so relaxing REQUIRED to NULLABLE is free.
"""

from __future__ import annotations

import re

from edge.twin.bigquery.errors import Invalid, InvalidQuery, NotImplementedByTwin

TYPE_ALIASES = {
    "STRING": "STRING",
    "BYTES": "BYTES",
    "INTEGER": "INTEGER",
    "INT64": "INTEGER",
    "FLOAT": "FLOAT",
    "FLOAT64": "FLOAT",
    "NUMERIC": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
    "TIME": "TIME",
    "DATETIME": "DATETIME",
    "GEOGRAPHY": "GEOGRAPHY",
    "JSON": "JSON",
    "RECORD": "RECORD",
    "STRUCT": "RECORD",
}

# BIGNUMERIC has 76 digits in BigQuery; DuckDB's widest decimal has 38, so the twin keeps 20 + 18.
DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "INTEGER": "BIGINT",
    "FLOAT": "DOUBLE",
    "NUMERIC": "DECIMAL(38,9)",
    "BIGNUMERIC": "DECIMAL(38,18)",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE",
    "TIME": "TIME",
    "DATETIME": "TIMESTAMP",
    "GEOGRAPHY": "VARCHAR",
    "JSON": "JSON",
}
MODES = ("NULLABLE", "REQUIRED", "REPEATED")

# The table Vertex AI's request-response logging writes (schema version v1; see edge/twin/bigquery/__init__.py).
REQUEST_RESPONSE_LOGGING_FIELDS = (
    {"name": "endpoint", "type": "STRING", "mode": "NULLABLE"},
    {"name": "deployed_model_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "logging_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "request_id", "type": "NUMERIC", "mode": "NULLABLE"},
    {"name": "request_payload", "type": "STRING", "mode": "REPEATED"},
    {"name": "response_payload", "type": "STRING", "mode": "REPEATED"},
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")
_RESERVED_PREFIXES = ("_TABLE_", "_FILE_", "_PARTITION", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER")
MAX_DEPTH = 15


def normalize_fields(fields: list, path: str = "", depth: int = 1) -> list[dict]:
    """The schema's fields as BigQuery returns them (legacy type names, a mode on each field);
    raises Invalid where BigQuery would refuse the schema."""
    if not isinstance(fields, list):
        raise Invalid("Invalid schema: fields must be a list.")
    if depth > MAX_DEPTH:
        raise Invalid(f"Invalid schema: field {path} nests RECORDs deeper than {MAX_DEPTH} levels.")
    seen: set[str] = set()
    out = []
    for raw in fields:
        field = _normalize_field(raw, path, depth)
        key = field["name"].lower()
        if key in seen:
            raise Invalid(f"Invalid schema: duplicate field name {path}{field['name']} (names ignore case).")
        seen.add(key)
        out.append(field)
    return out


def _normalize_field(raw, path: str, depth: int) -> dict:
    if not isinstance(raw, dict):
        raise Invalid("Invalid schema: each field must be an object.")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Invalid(
            f"Invalid field name {path}{name}: names start with a letter or underscore and hold only letters, "
            "digits and underscores (at most 300)."
        )
    if depth == 1 and name.upper().startswith(_RESERVED_PREFIXES):
        raise Invalid(f"Invalid field name {name}: the prefix is reserved by BigQuery.")
    declared = str(raw.get("type", "")).upper()
    if declared not in TYPE_ALIASES:
        raise Invalid(f"Invalid field type {declared or '(none)'} for field {path}{name}.")
    mode = str(raw.get("mode") or "NULLABLE").upper()
    if mode not in MODES:
        raise Invalid(f"Invalid mode {mode} for field {path}{name}.")
    field = {**raw, "name": name, "type": TYPE_ALIASES[declared], "mode": mode}
    if field["type"] == "RECORD":
        if not raw.get("fields"):
            raise Invalid(f"Field {path}{name} is type RECORD but has no schema.")
        field["fields"] = normalize_fields(raw["fields"], f"{path}{name}.", depth + 1)
    elif "fields" in raw:
        raise Invalid(f"Field {path}{name} is type {field['type']} and cannot have subfields.")
    return field


def duckdb_type(field: dict) -> str:
    """The DuckDB column type that holds a BigQuery field (REPEATED as a list)."""
    if field["type"] == "RECORD":
        inner = ", ".join(f"{quote(f['name'])} {duckdb_type(f)}" for f in field["fields"])
        base = f"STRUCT({inner})"
    else:
        base = DUCKDB_TYPES[field["type"]]
    return f"{base}[]" if field["mode"] == "REPEATED" else base


def quote(identifier: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def merge_for_patch(old: list[dict], new: list[dict]) -> list[dict]:
    """The schema a patch may set: every old field kept in place with its type (descriptions may change,
    REQUIRED may relax to NULLABLE) and new top-level fields appended as NULLABLE or REPEATED."""
    by_name = {f["name"].lower(): f for f in new}
    kept = []
    for field in old:
        changed = by_name.pop(field["name"].lower(), None)
        if changed is None:
            raise Invalid(f"Provided Schema does not match Table. Field {field['name']} is missing in new schema")
        _check_compatible(field, changed, "")
        kept.append(changed)
    for field in by_name.values():
        if field["mode"] == "REQUIRED":
            raise Invalid(f"Provided Schema does not match Table. Cannot add required field {field['name']}")
    return kept + list(by_name.values())


def _check_compatible(old: dict, new: dict, path: str) -> None:
    name = f"{path}{old['name']}"
    mismatch = "Provided Schema does not match Table. Field"
    if new["type"] != old["type"]:
        raise Invalid(f"{mismatch} {name} has changed type from {old['type']} to {new['type']}")
    if new["mode"] != old["mode"] and (old["mode"], new["mode"]) != ("REQUIRED", "NULLABLE"):
        raise Invalid(f"{mismatch} {name} has changed mode from {old['mode']} to {new['mode']}")
    if old["type"] != "RECORD":
        return
    if [f["name"].lower() for f in new["fields"]] != [f["name"].lower() for f in old["fields"]]:
        raise NotImplementedByTwin(f"The twin adds top-level columns only; it cannot change RECORD {name}'s fields.")
    for sub_old, sub_new in zip(old["fields"], new["fields"], strict=True):
        _check_compatible(sub_old, sub_new, f"{name}.")


def field_from_duckdb(name: str, dtype) -> dict:
    """The BigQuery schema field of a query result column of DuckDB type `dtype`."""
    kind = dtype.id
    if kind in ("list", "array"):
        child = dtype.child if kind == "list" else dict(dtype.children)["child"]
        if child.id in ("list", "array"):
            raise InvalidQuery(f"Column {name}: arrays of arrays are not allowed in BigQuery results.")
        return {**field_from_duckdb(name, child), "mode": "REPEATED"}
    if kind == "struct":
        return {
            "name": name,
            "type": "RECORD",
            "mode": "NULLABLE",
            "fields": [field_from_duckdb(sub, t) for sub, t in dtype.children],
        }
    return {"name": name, "type": _scalar_type(name, dtype), "mode": "NULLABLE"}


_INTEGER_IDS = {"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint"}
_SCALAR_IDS = {
    "float": "FLOAT",
    "double": "FLOAT",
    "boolean": "BOOLEAN",
    "timestamp with time zone": "TIMESTAMP",
    "timestamp": "DATETIME",
    "date": "DATE",
    "time": "TIME",
    "blob": "BYTES",
    "uuid": "STRING",
    "null": "INTEGER",  # BigQuery types a bare NULL as INT64
}


def _scalar_type(name: str, dtype) -> str:
    kind = dtype.id
    if kind in _INTEGER_IDS:
        return "INTEGER"
    if kind == "varchar":
        return "JSON" if str(dtype) == "JSON" else "STRING"
    if kind == "decimal":
        scale = dict(dtype.children)["scale"]
        return "NUMERIC" if scale <= 9 else "BIGNUMERIC"
    if kind in _SCALAR_IDS:
        return _SCALAR_IDS[kind]
    raise InvalidQuery(f"Column {name} has type {dtype}, which has no BigQuery equivalent in the twin.")
