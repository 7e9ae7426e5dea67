"""Prepare tabular data: your CSV file(s) -> train/validation/test arrays, the schema and a test payload.

    python prepare.py --raw DIR --out DIR --params params.yaml [--schema schema.json] [--payload test_payload.json]

Reads every *.csv file in --raw (a header row, then one row per example; all files with the same columns): the
column `prepare.label_column` holds the class, every other column is a numeric feature. The classes are the label
column's values, sorted (numerically when they are all numbers): class id = position. Each class's rows are split
into train, validation and test (seeded, stratified), and written exactly as `train.npz`, `validation.npz`,
`test.npz` into --out, each holding `x` (float64 [N, features]) and `y` (int64 [N]); the same inputs and params give
byte-identical files (DVC hashes them). --schema gets {"label_column", "features", "labels", "rows"} (model.yaml
reads the class names from it) and --payload {"instances": [...]}: three test rows (the first of each
class first), as the model is served them. Any bad input or param exits 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

MIN_ROWS_PER_CLASS = 3  # one each for train, validation and test
ADD_HINT = "add your data with `invoke data.add data.csv --model NAME`"


class PrepareError(Exception):
    """A user-facing problem with the inputs: printed as one line, exit 1."""


def load_params(path: Path) -> dict:
    """The `prepare:` section, checked; PrepareError names the bad key."""
    try:
        section = (yaml.safe_load(path.read_text()) or {}).get("prepare")
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise PrepareError(f"cannot read params file {path}: {exc}".replace("\n", " ")) from None
    if not isinstance(section, dict):
        raise PrepareError(f"{path}: missing `prepare:` section")
    expected = {"label_column", "validation_fraction", "test_fraction", "seed"}
    if set(section) != expected:
        raise PrepareError(f"{path}: prepare: expected keys {sorted(expected)}, got {sorted(section)}")
    for key in ("validation_fraction", "test_fraction"):
        value = section[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
            raise PrepareError(f"{path}: prepare.{key} must be a number in (0, 0.5), got {value!r}")
    if isinstance(section["seed"], bool) or not isinstance(section["seed"], int) or section["seed"] < 0:
        raise PrepareError(f"{path}: prepare.seed must be a non-negative integer, got {section['seed']!r}")
    if not isinstance(section["label_column"], str) or not section["label_column"]:
        raise PrepareError(f"{path}: prepare.label_column must name a column of your CSV")
    return section


def read_rows(raw: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of every CSV file in `raw` (or `raw` itself, a CSV file)."""
    files = [raw] if raw.is_file() else sorted(raw.glob("*.csv")) if raw.is_dir() else []
    if not files:
        raise PrepareError(f"no CSV file in {raw}; {ADD_HINT}")
    header, rows = None, []
    for path in files:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            head = [name.strip() for name in next(reader, [])]
            if header is not None and head != header:
                raise PrepareError(f"{path.name} has columns {head}, {files[0].name} has {header}")
            header = head
            rows += [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise PrepareError(f"the CSV file(s) in {raw} have no rows")
    return header, rows


def to_arrays(header: list[str], rows: list[list[str]], label: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(feature values float64 [N, F], the label of each row, the feature names)."""
    if label not in header:
        raise PrepareError(f"no label column {label!r} in the CSV (columns: {', '.join(header)}); see params.yaml")
    at = header.index(label)
    features = [name for i, name in enumerate(header) if i != at]
    if not features:
        raise PrepareError("the CSV has no feature column besides the label")
    values, labels = [], []
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise PrepareError(f"CSV row {number} has {len(row)} values, the header {len(header)}")
        try:
            numbers = [float(cell) for i, cell in enumerate(row) if i != at]
        except ValueError:
            raise PrepareError(f"CSV row {number}: every feature must be a number, got {row}") from None
        if not all(math.isfinite(n) for n in numbers):
            raise PrepareError(f"CSV row {number}: a feature is NaN or infinite")
        values.append(numbers)
        labels.append(row[at].strip())
    return np.asarray(values, dtype=np.float64), labels, features


def class_names(labels: list[str]) -> list[str]:
    """The distinct labels, sorted (as numbers when they all are)."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def split(y: np.ndarray, classes: int, params: dict) -> dict[str, np.ndarray]:
    """Row indices of train, validation and test: each class shuffled (seeded), then cut by the fractions."""
    rng = np.random.default_rng(params["seed"])
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for label in range(classes):
        members = rng.permutation(np.flatnonzero(y == label))
        test = max(1, round(len(members) * params["test_fraction"]))
        validation = max(1, round(len(members) * params["validation_fraction"]))
        parts["test"].append(members[:test])
        parts["validation"].append(members[test : test + validation])
        parts["train"].append(members[test + validation :])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def prepare(raw: Path, out: Path, params: dict) -> dict:
    """Writes the three splits into `out`; returns the schema (features, labels, rows per split)."""
    header, rows = read_rows(raw)
    x, labels, features = to_arrays(header, rows, params["label_column"])
    names = class_names(labels)
    y = np.asarray([names.index(label) for label in labels], dtype=np.int64)
    counts = np.bincount(y, minlength=len(names))
    if len(names) < 2:
        raise PrepareError(f"the label column has one class only ({names[0]!r}): a classifier needs two or more")
    if counts.min() < MIN_ROWS_PER_CLASS:
        raise PrepareError(f"class {names[int(counts.argmin())]!r} has {counts.min()} rows; each needs at least 3")
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, index in split(y, len(names), params).items():
        # np.savez stamps every member with the fixed zip epoch (1980-01-01): bytes depend on the data only
        np.savez(out / f"{name}.npz", x=np.ascontiguousarray(x[index]), y=np.ascontiguousarray(y[index]))
        sizes[name] = len(index)
    return {"label_column": params["label_column"], "features": features, "labels": names, "rows": sizes}


def payload_rows(y: np.ndarray, count: int) -> list[int]:
    """`count` rows of a split: the first of each class, then the rest in order (the smoke test sees several)."""
    firsts = [int(np.flatnonzero(y == label)[0]) for label in np.unique(y)]
    return (firsts + [i for i in range(len(y)) if i not in firsts])[:count]


def write_payload(out: Path, payload: Path, count: int = 3) -> None:
    with np.load(out / "test.npz") as test:
        instances = test["x"][payload_rows(test["y"], count)].tolist()
    payload.write_text(json.dumps({"instances": instances}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True, help="folder of CSV file(s) (or one CSV file)")
    parser.add_argument("--out", type=Path, required=True, help="folder for train/validation/test .npz")
    parser.add_argument("--params", type=Path, required=True, help="params.yaml with a `prepare:` section")
    parser.add_argument("--schema", type=Path, default=Path("schema.json"), help="where the schema goes")
    parser.add_argument("--payload", type=Path, default=Path("test_payload.json"), help="where the payload goes")
    args = parser.parse_args(argv)
    try:
        schema = prepare(args.raw, args.out, load_params(args.params))
    except PrepareError as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 1
    args.schema.write_text(json.dumps(schema, indent=1) + "\n")
    write_payload(args.out, args.payload)
    rows = ", ".join(f"{name}={n}" for name, n in schema["rows"].items())
    print(f"prepare: {rows} rows, {len(schema['features'])} features, classes {schema['labels']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
