"""Prepare images: a folder per class -> train/validation/test arrays, the schema and a test payload.

    python prepare.py --raw DIR --out DIR --params params.yaml [--schema schema.json] [--payload test_payload.json]

--raw holds one subfolder per class (its name is the class name; classes sorted by name: class id = position)
with that class's images (PNG, JPEG, BMP or GIF). Each image is converted to grey (`prepare.channels: 1`) or RGB
(3) and resized to `prepare.height` x `prepare.width`. Each class's images are split into train, validation and
test (seeded, stratified) and written exactly as `train.npz`, `validation.npz`, `test.npz` into --out, each holding
`x` (uint8 [N, height, width, channels]) and `y` (int64 [N]); the same inputs and params give byte-identical files
(DVC hashes them). --schema gets {"labels", "height", "width", "channels", "rows"} (model.yaml reads the class
names from it) and --payload {"instances": [...]}: three test images (the first of each class first) as the
model is served them, flat lists of height*width*channels pixel values 0..255. Any bad input or param exits 1 with
one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
MIN_IMAGES_PER_CLASS = 3  # one each for train, validation and test
ADD_HINT = "add your images with `invoke data.add IMAGES_FOLDER --model NAME` (a subfolder per class)"


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
    expected = {"height", "width", "channels", "validation_fraction", "test_fraction", "seed"}
    if set(section) != expected:
        raise PrepareError(f"{path}: prepare: expected keys {sorted(expected)}, got {sorted(section)}")
    for key in ("height", "width"):
        if isinstance(section[key], bool) or not isinstance(section[key], int) or not 4 <= section[key] <= 512:
            raise PrepareError(f"{path}: prepare.{key} must be an integer from 4 to 512, got {section[key]!r}")
    if section["channels"] not in (1, 3):
        raise PrepareError(f"{path}: prepare.channels must be 1 (grey) or 3 (RGB), got {section['channels']!r}")
    for key in ("validation_fraction", "test_fraction"):
        value = section[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
            raise PrepareError(f"{path}: prepare.{key} must be a number in (0, 0.5), got {value!r}")
    if isinstance(section["seed"], bool) or not isinstance(section["seed"], int) or section["seed"] < 0:
        raise PrepareError(f"{path}: prepare.seed must be a non-negative integer, got {section['seed']!r}")
    return section


def read_image(path: Path, params: dict) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            converted = image.convert("L" if params["channels"] == 1 else "RGB")
            resized = converted.resize((params["width"], params["height"]), Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError) as exc:
        raise PrepareError(f"{path} is not a readable image ({exc})") from None
    pixels = np.asarray(resized, dtype=np.uint8)
    return pixels.reshape(params["height"], params["width"], params["channels"])


def read_images(raw: Path, params: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 [N, H, W, C], class ids [N], class names) of the class subfolders of `raw`."""
    classes = sorted(p.name for p in raw.iterdir() if p.is_dir()) if raw.is_dir() else []
    if len(classes) < 2:
        raise PrepareError(f"{raw} needs a subfolder per class, at least two; {ADD_HINT}")
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (raw / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < MIN_IMAGES_PER_CLASS:
            raise PrepareError(f"class {name!r} has {len(files)} images; each needs at least {MIN_IMAGES_PER_CLASS}")
        images += [read_image(path, params) for path in files]
        labels += [label] * len(files)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def split(y: np.ndarray, classes: int, params: dict) -> dict[str, np.ndarray]:
    """Indices of train, validation and test: each class shuffled (seeded), then cut by the fractions."""
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
    """Writes the three splits into `out`; returns the schema."""
    x, y, classes = read_images(raw, params)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, index in split(y, len(classes), params).items():
        # np.savez stamps every member with the fixed zip epoch (1980-01-01): bytes depend on the data only
        np.savez(out / f"{name}.npz", x=np.ascontiguousarray(x[index]), y=np.ascontiguousarray(y[index]))
        sizes[name] = len(index)
    shape = {key: params[key] for key in ("height", "width", "channels")}
    return {"labels": classes, **shape, "rows": sizes}


def payload_rows(y: np.ndarray, count: int) -> list[int]:
    """`count` rows of a split: the first of each class, then the rest in order (the smoke test sees several)."""
    firsts = [int(np.flatnonzero(y == label)[0]) for label in np.unique(y)]
    return (firsts + [i for i in range(len(y)) if i not in firsts])[:count]


def write_payload(out: Path, payload: Path, count: int = 3) -> None:
    with np.load(out / "test.npz") as test:
        chosen = test["x"][payload_rows(test["y"], count)]
        instances = chosen.reshape(len(chosen), -1).tolist()
    payload.write_text(json.dumps({"instances": instances}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True, help="folder with a subfolder of images per class")
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
    print(f"prepare: {rows} images of {schema['height']}x{schema['width']}, classes {schema['labels']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
