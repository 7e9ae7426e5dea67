"""What edge calls for the fashion model (see models/README.md): the data, and what a valid instance is.

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
