"""What edge calls for the fashion model (see models/README.md): the data, what valid params and a valid instance
are, the held-out split and its perturbations, the monitored features.

Hooks raise ValueError (or OSError) with a one-line message for problems the user can fix.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import urllib.request
from pathlib import Path

PIXELS = 28 * 28
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# name: (md5 of the official .gz as published with the dataset, sha256 of its decompressed idx content).
# Debian recompresses the files, so the .gz bytes differ; the content is checked, and stored decompressed,
# so the DVC version is the same whichever source a teammate seeded from.
FILES = {
    "train-images-idx3-ubyte": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte": (
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte": (
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte": (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unpack_checked(archive: Path, target: Path, name: str) -> None:
    """Decompresses `archive` to target/name if its content is the official one."""
    part = target / f"{name}.part"
    try:
        with gzip.open(archive) as src, part.open("wb") as out:
            shutil.copyfileobj(src, out)
    except (OSError, EOFError) as exc:
        part.unlink(missing_ok=True)
        raise ValueError(f"{archive} is not a readable gzip file ({exc})") from None
    if _digest(part, "sha256") != FILES[name][1]:
        part.unlink()
        raise ValueError(f"{archive} does not hold the official Fashion-MNIST {name}")
    part.rename(target / name)


def _from_folder(source: Path, target: Path) -> None:
    for name in FILES:
        archive = source / f"{name}.gz"
        if not archive.exists():
            raise ValueError(f"{archive} is missing")
        _unpack_checked(archive, target, name)


def _download(target: Path, log) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, (gz_md5, _) in FILES.items():
            archive = Path(tmp) / f"{name}.gz"
            log(f"downloading {OFFICIAL_URL}{name}.gz")
            try:
                with urllib.request.urlopen(f"{OFFICIAL_URL}{name}.gz", timeout=60) as response:
                    archive.write_bytes(response.read())
            except OSError as exc:
                raise ValueError(
                    f"could not download {name}.gz ({exc}); offline, install Debian's "
                    "dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)"
                ) from None
            if _digest(archive, "md5") != gz_md5:
                raise ValueError(f"{name}.gz from {OFFICIAL_URL} does not match the published checksum {gz_md5}")
            _unpack_checked(archive, target, name)


def seed(target: Path, source: Path | None = None, log=print) -> str:
    """Puts the four Fashion-MNIST idx files, content checked, in `target`; returns where they came from.

    Sources, in order: files already there, `source` (a folder of the four .gz files), Debian's
    dataset-fashion-mnist, the official URLs.
    """
    target.mkdir(parents=True, exist_ok=True)
    if all((target / n).exists() and _digest(target / n, "sha256") == sha for n, (_, sha) in FILES.items()):
        return f"files already in {target.name}"
    if source is not None:
        _from_folder(source, target)
        return str(source)
    if DEBIAN_DIR.exists():
        _from_folder(DEBIAN_DIR, target)
        return f"{DEBIAN_DIR} (Debian's dataset-fashion-mnist)"
    _download(target, log)
    return OFFICIAL_URL


def validate_instance(instance) -> str | None:
    """Why `instance` is not 784 pixel values 0..255, or None when it is."""
    if not isinstance(instance, list):
        return f"is a {type(instance).__name__}, not a list of pixel values"
    if len(instance) != PIXELS:
        return f"has {len(instance)} values"
    for value in instance:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 255:
            return f"holds {value!r}, not a pixel value 0..255"
    return None


# What the trainer cannot do without (the rest of `train:` is checked by the trainer itself: fashion_trainer.params).
REQUIRED_PARAMS = {"epochs": int, "batch_size": int, "learning_rate": (int, float), "seed": int}


def validate_params(train: dict) -> str | None:
    """Why the `train:` section of params.yaml cannot train the CNN (one line), or None: `invoke train` asks before
    DVC runs anything."""
    for key, kind in REQUIRED_PARAMS.items():
        value = train.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or value <= 0 and key != "seed":
            return f"train.{key} must be a positive number, got {value!r}"
    return None


def heldout(root: Path, split: str = "test"):
    """(instances float32 [N, 784] of pixel values 0..255, labels [N]) of a prepared split, as the model serves them:
    what `invoke evaluate` and the evaluate stage run the model on."""
    import numpy as np

    path = root / "data" / "prepared" / "fashion" / f"{split}.npz"
    with np.load(path) as data:  # FileNotFoundError when it is not prepared (edge then pulls it from DVC)
        x, y = data["x"], data["y"]
    return x.reshape(len(x), PIXELS).astype(np.float32), y.astype(np.int64)


def perturbations(instances, rng) -> dict:
    """Changes that must not change the garment: the images moved by 1 and by 2 pixels (in a random direction per
    image, the edge filled with black background) and 10% brighter or darker, clipped to 0..255."""
    import numpy as np

    images = instances.reshape(-1, 28, 28)

    def shifted(pixels: int):
        out = np.zeros_like(images)
        moves = rng.integers(0, 4, size=len(images))
        for index, (dy, dx) in enumerate(((0, 1), (0, -1), (1, 0), (-1, 0))):
            chosen = moves == index
            moved = np.roll(images[chosen], (dy * pixels, dx * pixels), axis=(1, 2))
            if dy:
                moved[:, slice(0, pixels) if dy > 0 else slice(-pixels, None), :] = 0
            else:
                moved[:, :, slice(0, pixels) if dx > 0 else slice(-pixels, None)] = 0
            out[chosen] = moved
        return out.reshape(instances.shape)

    return {
        "shift_1px": shifted(1),
        "shift_2px": shifted(2),
        "brighter_10pct": np.clip(instances * 1.1, 0, 255).astype(instances.dtype),
        "darker_10pct": np.clip(instances * 0.9, 0, 255).astype(instances.dtype),
    }


# Monitored features (edge/monitoring, `invoke monitor`): what is compared, per instance, with the reference of the
# version that answered. Pixel features see the request, the others the model's answer.
FEATURES = {
    "predicted_class": "categorical",  # "<id> <label>": the class distribution
    "confidence": "numeric",  # the top probability
    "margin": "numeric",  # top probability minus the second: how sure between the two likeliest classes
    "mean_intensity": "numeric",  # mean pixel value, 0..255
    "ink_fraction": "numeric",  # share of pixels above INK (the garment; the background is 0)
    "border_intensity": "numeric",  # mean of the outermost ring of pixels (background: near 0)
    "contrast": "numeric",  # standard deviation of the pixel values
}
INK = 32  # a pixel above this is part of the garment


def _labels() -> list[str]:
    import yaml

    return yaml.safe_load((Path(__file__).with_name("model.yaml")).read_text())["labels"]


def _probabilities(prediction) -> list[float]:
    """The class probabilities of one prediction: the serving signature's {class_id, probabilities}, or a list."""
    return prediction["probabilities"] if isinstance(prediction, dict) else prediction


def features(instances, predictions) -> dict[str, list]:
    """The FEATURES of valid instances (784 pixel values each) and the model's predictions for them."""
    import numpy as np

    pixels = np.asarray(instances, dtype=np.float32).reshape(-1, 28, 28)
    probabilities = np.asarray([_probabilities(p) for p in predictions], dtype=np.float64)
    ordered = np.sort(probabilities, axis=1)
    labels = _labels()
    border = np.concatenate([pixels[:, 0, :], pixels[:, -1, :], pixels[:, 1:-1, 0], pixels[:, 1:-1, -1]], axis=1)
    flat = pixels.reshape(len(pixels), -1)
    return {
        "predicted_class": [f"{c} {labels[c]}" for c in probabilities.argmax(axis=1).tolist()],
        "confidence": ordered[:, -1].tolist(),
        "margin": (ordered[:, -1] - ordered[:, -2]).tolist(),
        "mean_intensity": flat.mean(axis=1).tolist(),
        "ink_fraction": (flat > INK).mean(axis=1).tolist(),
        "border_intensity": border.mean(axis=1).tolist(),
        "contrast": flat.std(axis=1).tolist(),
    }


def validate_instances(instances) -> list[str | None]:
    """`validate_instance` of each instance, fast for the usual case (monitoring checks thousands): a list of
    784 ints or floats that are all within 0..255 is valid; anything else gets validate_instance's answer."""
    import numpy as np

    plain = [isinstance(i, list) and len(i) == PIXELS and set(map(type, i)) <= {int, float} for i in instances]
    answers: list[str | None] = [None] * len(instances)
    rows = [i for i, ok in enumerate(plain) if ok]
    if rows:
        pixels = np.asarray([instances[i] for i in rows], dtype=np.float64)
        in_range = (pixels >= 0).all(axis=1) & (pixels <= 255).all(axis=1)  # NaN is out of range
        for i, ok in zip(rows, in_range.tolist(), strict=True):
            plain[i] = ok
    for i, ok in enumerate(plain):
        if not ok:
            answers[i] = validate_instance(instances[i])
    return answers
