"""Versioned data with DVC: the repo's remote is gs://<bucket>/dvc; each model's raw data is seeded by its
own hook or added from the user's files, then `dvc add`ed and pushed."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from edge.config import ModelConfig
from edge.errors import EdgeError
from edge.project import Project

log = logging.getLogger(__name__)

REMOTE = "storage"


class DataError(EdgeError):
    """Data trouble; the message is one line that says what to do."""


def file_hash(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes; md5 is DVC's content hash."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dvc(
    project: Project, *args: str, quiet: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Runs the venv's DVC in the project root on the project's target (EDGE_TARGET, the target's client
    variables and `env` are given to it, and through it to pipeline stages); raises EdgeError on failure.

    Output streams through unless `quiet`. A failure is one line: a stage's own `edge: ...` line if it printed
    one, else DVC's ERROR line. On Ctrl-C the child got the signal too: wait for it to wind down (a train
    stage cancels its job).
    """
    env = {
        **os.environ,
        **project.target.env,
        "EDGE_TARGET": project.target.name,
        "DVC_NO_ANALYTICS": "1",  # no usage report (and no daemon process) after every DVC command
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **(env or {}),
    }
    held: list[str] = []  # one-line errors, shown once by whoever catches the DataError
    with subprocess.Popen(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        relay = threading.Thread(target=_relay_errors, args=(child.stderr, held, quiet), daemon=True)
        relay.start()
        try:
            out = child.stdout.read() if quiet else ""
            child.wait()
        except KeyboardInterrupt:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
        finally:
            relay.join(timeout=10)
    if child.returncode != 0:
        raise _failure(args, held)
    return subprocess.CompletedProcess(child.args, child.returncode, out, "")


def _relay_errors(stream, held: list[str], quiet: bool) -> None:
    """Passes DVC's stderr on, holding back the lines that only say it failed (they become one error line)."""
    try:
        for line in stream:
            if line.startswith(("ERROR: ", "edge: ")) and not line.startswith("edge: warning:"):
                held.append(line.strip())
            elif not quiet:
                sys.stderr.write(line)
                sys.stderr.flush()
    except (ValueError, OSError):  # the stream was closed under us: the command is being interrupted
        pass


def _failure(args: tuple[str, ...], held: list[str]) -> EdgeError:
    own = [line.removeprefix("edge: ") for line in held if line.startswith("edge: ")]
    if own:  # a stage of ours said what went wrong
        return EdgeError(own[-1])
    detail = held[-1].removeprefix("ERROR: ") if held else "see the output above"
    return DataError(f"`dvc {' '.join(args)}` failed: {detail}")


def configure_remote(project: Project) -> None:
    """Points the DVC remote at the target; target-specific options (the twin's address) go only to
    .dvc/config.local, never to git."""
    local = project.root / ".dvc" / "config.local"
    options = project.target.dvc_remote_options()
    if options:
        lines = [f"['remote \"{REMOTE}\"']"] + [f"    {key} = {value}" for key, value in options.items()]
        local.write_text("\n".join(lines) + "\n")
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


def seed(project: Project, model: ModelConfig, source: Path | None = None) -> tuple[str, str]:
    """Fetches the model's raw data with its `seed` hook into its data folder, `dvc add`s and pushes it.
    Returns (where the data came from, the data folder)."""
    spec = project.spec(model)
    folder = _data_folder(spec)
    if getattr(spec.hooks, "seed", None) is None:
        raise DataError(
            f"{model.name} has no `seed` hook in {model.path}/{spec.hooks_file}: bring its data with "
            f"`invoke data.add PATH --model {model.name}`"
        )
    configure_remote(project)
    try:
        origin = spec.hook("seed")(project.root / folder, source, log=log.info)
    except (ValueError, OSError) as exc:
        raise DataError(str(exc)) from None
    _track(project, folder)
    return origin, folder


def add(project: Project, model: ModelConfig, source: Path) -> str:
    """Puts a user's own data (a file or folder) in the model's data folder, `dvc add`s and pushes it;
    returns the data folder."""
    spec = project.spec(model)
    folder = _data_folder(spec)
    source = source.resolve()
    if not source.exists():
        raise DataError(f"{source} does not exist")
    target = project.root / folder
    if source != target.resolve():
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / source.name)
    configure_remote(project)
    _track(project, folder)
    return folder


def _data_folder(spec) -> str:
    if not spec.data:
        raise DataError(f"{spec.folder.name}/model.yaml names no `data:` folder for the model's raw data")
    return spec.data


def _track(project: Project, folder: str) -> None:
    dvc(project, "add", "--quiet", folder)
    dvc(project, "push", "--quiet", f"{folder}.dvc")


def data_version(project: Project, model: ModelConfig) -> str | None:
    """The DVC hash of the model's raw data (from its .dvc file), or None before it is seeded or added."""
    import yaml

    folder = project.spec(model).data
    path = project.root / f"{folder}.dvc" if folder else None
    if path is None or not path.exists():
        return None
    return yaml.safe_load(path.read_text())["outs"][0]["md5"].removesuffix(".dir")
