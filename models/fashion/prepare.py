"""Prepare Fashion-MNIST: raw idx .gz files -> train/validation/test .npz arrays.

    python prepare.py --raw DIR --out DIR --params params.yaml

Reads the four idx files from --raw, splits the 60k training rows into train and validation
(stratified per class, seeded), keeps the 10k test rows in their original order, and writes
exactly `train.npz`, `validation.npz`, `test.npz` into --out, each holding `x` (uint8
[N, 28, 28]) and `y` (uint8 [N]). The same inputs and params give byte-identical files
(DVC hashes them). Any bad input or param exits 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
SIDE = 28
CLASSES = 10
RAW_FILES = {  # `invoke data.seed` stores them decompressed; the .gz originals are read too
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
SEED_HINT = "run `invoke data.seed` to fetch Fashion-MNIST"


class PrepareError(Exception):
    """A user-facing problem with the inputs: printed as one line, exit 1."""


@dataclass(frozen=True)
class PrepareParams:
    """The `prepare:` section of params.yaml."""

    validation_fraction: float
    seed: int


def load_params(path: Path) -> PrepareParams:
    """Reads and validates the `prepare:` section; raises PrepareError naming the bad key."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PrepareError(f"cannot read params file {path}: {exc}".replace("\n", " ")) from None
    section = document.get("prepare") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise PrepareError(f"{path}: missing `prepare:` section")
    expected = {"validation_fraction", "seed"}
    missing, unknown = expected - section.keys(), section.keys() - expected
    if missing or unknown:
        problems = [
            f"missing keys {sorted(missing)}" if missing else "",
            f"unknown keys {sorted(unknown)}" if unknown else "",
        ]
        raise PrepareError(f"{path}: prepare: " + "; ".join(filter(None, problems)))
    fraction, seed = section["validation_fraction"], section["seed"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise PrepareError(f"{path}: prepare.validation_fraction must be a number in (0, 1), got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PrepareError(f"{path}: prepare.seed must be a non-negative integer, got {seed!r}")
    return PrepareParams(float(fraction), seed)


def read_idx(path: Path, magic: int, count: int) -> np.ndarray:
    """Reads one idx file, plain or as `path`.gz: uint8 [count, 28, 28] images or uint8 [count] labels."""
    if not path.is_file() and path.with_name(path.name + ".gz").is_file():
        path = path.with_name(path.name + ".gz")
    if not path.is_file():
        raise PrepareError(f"missing raw file {path}; {SEED_HINT}")
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise PrepareError(f"{path} is not a readable gzip file ({exc}); {SEED_HINT}") from None
    dims = 3 if magic == IMAGE_MAGIC else 1
    header = 4 * (1 + dims)
    values = np.frombuffer(data[:header], dtype=">u4") if len(data) >= header else np.array([0])
    if values[0] != magic:
        raise PrepareError(f"{path}: wrong idx magic number {int(values[0])} (expected {magic}); {SEED_HINT}")
    shape = tuple(int(v) for v in values[1:])
    expected = (count, SIDE, SIDE) if dims == 3 else (count,)
    if shape != expected or len(data) != header + int(np.prod(expected)):
        raise PrepareError(
            f"{path}: wrong size: header {shape}, {len(data) - header} bytes of data (expected {expected}); {SEED_HINT}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(expected)


def load_raw(raw: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The raw train and test sets as {name: (images, labels)}."""
    sets = {}
    for name, (images, labels, count) in RAW_FILES.items():
        x = read_idx(raw / images, IMAGE_MAGIC, count)
        y = read_idx(raw / labels, LABEL_MAGIC, count)
        if y.max() >= CLASSES:
            raise PrepareError(f"{raw / labels}: labels outside 0..{CLASSES - 1}; {SEED_HINT}")
        sets[name] = (x, y)
    return sets


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split: (train indices, validation indices), each in ascending order."""
    rng = np.random.default_rng(seed)
    validation = []
    for label in range(CLASSES):
        members = np.flatnonzero(labels == label)
        validation.append(rng.permutation(members)[: round(len(members) * fraction)])
    is_validation = np.zeros(len(labels), dtype=bool)
    is_validation[np.concatenate(validation)] = True
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def prepare(raw: Path, out: Path, params: PrepareParams) -> dict[str, int]:
    """Writes train/validation/test .npz into `out`; returns rows per split."""
    sets = load_raw(raw)
    x, y = sets["train"]
    train, validation = split_indices(y, params.validation_fraction, params.seed)
    splits = {"train": (x[train], y[train]), "validation": (x[validation], y[validation]), "test": sets["test"]}
    out.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in splits.items():
        # np.savez stamps every member with the fixed zip epoch (1980-01-01): bytes depend on the data only
        np.savez(out / f"{name}.npz", x=np.ascontiguousarray(images), y=np.ascontiguousarray(labels))
    return {name: len(labels) for name, (_, labels) in splits.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True, help="directory with the four idx .gz files")
    parser.add_argument("--out", type=Path, required=True, help="directory for train/validation/test .npz")
    parser.add_argument("--params", type=Path, required=True, help="params.yaml with a `prepare:` section")
    args = parser.parse_args(argv)
    try:
        rows = prepare(args.raw, args.out, load_params(args.params))
    except PrepareError as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 1
    print("prepare: " + ", ".join(f"{name}={n}" for name, n in rows.items()) + f" rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
