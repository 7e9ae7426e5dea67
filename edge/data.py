"""Versioned data with DVC: the repo's remote is gs://<bucket>/dvc; Fashion-MNIST is seeded from a checked source."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from edge.errors import EdgeError
from edge.project import Project

REMOTE = "storage"
DATASET_DIR = Path("data/fashion-mnist")
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


class DataError(EdgeError):
    """Data trouble; the message is one line that says what to do."""


def file_hash(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes; md5 is DVC's content hash."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dvc(project: Project, *args: str, quiet: bool = False) -> subprocess.CompletedProcess:
    """Runs the venv's DVC in the project root with the target's environment; raises DataError on failure.

    On Ctrl-C the child got the signal too: wait for it to wind down (a train stage cancels its job).
    """
    env = {**os.environ, **project.target.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    pipe = subprocess.PIPE if quiet else None
    with subprocess.Popen(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=project.root,
        env=env,
        stdout=pipe,
        stderr=pipe,
        text=True,
    ) as child:
        try:
            out, err = child.communicate()
        except KeyboardInterrupt:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
    if child.returncode != 0:
        detail = (err or out or "").strip().splitlines()[-1:] if quiet else []
        raise DataError(f"`dvc {' '.join(args)}` failed" + (f": {detail[0]}" if detail else " (see above)"))
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def configure_remote(project: Project) -> None:
    """Points the DVC remote at the target; the twin's address goes only to .dvc/config.local (never in git)."""
    local = project.root / ".dvc" / "config.local"
    if project.target.is_local:
        local.write_text(
            f"['remote \"{REMOTE}\"']\n"
            f"    endpointurl = {project.target.env['STORAGE_EMULATOR_HOST']}\n"
            "    allow_anonymous_login = true\n"
        )
    else:
        local.unlink(missing_ok=True)


def init_data(project: Project) -> None:
    """`dvc init` in the project's git repo (once) with remote gs://<bucket>/dvc as the default."""
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=project.root, capture_output=True).returncode != 0:
        raise DataError(f"{project.root} is not a git repository: run `git init` first")
    if not (project.root / ".dvc").exists():
        dvc(project, "init", "--quiet")
        dvc(project, "config", "core.autostage", "true", quiet=True)
    dvc(project, "remote", "add", "--default", "--force", REMOTE, f"gs://{project.config.bucket}/dvc", quiet=True)
    configure_remote(project)


def _unpack_checked(archive: Path, target: Path, name: str) -> None:
    """Decompresses `archive` to target/name if its content is the official one."""
    part = target / f"{name}.part"
    try:
        with gzip.open(archive) as src, part.open("wb") as out:
            shutil.copyfileobj(src, out)
    except (OSError, EOFError) as exc:
        part.unlink(missing_ok=True)
        raise DataError(f"{archive} is not a readable gzip file ({exc})") from None
    if file_hash(part, "sha256") != FILES[name][1]:
        part.unlink()
        raise DataError(f"{archive} does not hold the official Fashion-MNIST {name}")
    part.rename(target / name)


def _present(target: Path) -> bool:
    return all((target / n).exists() and file_hash(target / n, "sha256") == sha for n, (_, sha) in FILES.items())


def _from_folder(source: Path, target: Path) -> None:
    for name in FILES:
        archive = source / f"{name}.gz"
        if not archive.exists():
            raise DataError(f"{archive} is missing")
        _unpack_checked(archive, target, name)


def _download(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, (gz_md5, _) in FILES.items():
            archive = Path(tmp) / f"{name}.gz"
            print(f"downloading {OFFICIAL_URL}{name}.gz", flush=True)
            try:
                with (
                    urllib.request.urlopen(f"{OFFICIAL_URL}{name}.gz", timeout=60) as response,
                    archive.open("wb") as out,
                ):
                    shutil.copyfileobj(response, out)
            except OSError as exc:
                raise DataError(
                    f"could not download {name}.gz ({exc}); offline, install Debian's "
                    "dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)"
                ) from None
            if file_hash(archive) != gz_md5:
                raise DataError(f"{name}.gz from {OFFICIAL_URL} does not match the published checksum {gz_md5}")
            _unpack_checked(archive, target, name)


def seed(project: Project, source: Path | None = None) -> str:
    """Puts Fashion-MNIST under data/fashion-mnist (content checked), `dvc add`s and pushes it.

    Sources, in order: `source` (a folder of the four .gz files), Debian's dataset-fashion-mnist,
    the official URLs. Returns where the files came from.
    """
    configure_remote(project)
    target = project.root / DATASET_DIR
    target.mkdir(parents=True, exist_ok=True)
    if _present(target):
        origin = "files already in data/fashion-mnist"
    elif source is not None:
        _from_folder(source, target)
        origin = str(source)
    elif DEBIAN_DIR.exists():
        _from_folder(DEBIAN_DIR, target)
        origin = f"{DEBIAN_DIR} (Debian's dataset-fashion-mnist)"
    else:
        _download(target)
        origin = OFFICIAL_URL
    dvc(project, "add", "--quiet", str(DATASET_DIR))
    dvc(project, "push", str(DATASET_DIR) + ".dvc")
    return origin


def data_version(project: Project) -> str | None:
    """The DVC hash of data/fashion-mnist (from its .dvc file), or None before `invoke data.seed`."""
    import yaml

    path = project.root / f"{DATASET_DIR}.dvc"
    if not path.exists():
        return None
    return yaml.safe_load(path.read_text())["outs"][0]["md5"].removesuffix(".dir")
